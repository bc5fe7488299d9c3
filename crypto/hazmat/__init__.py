"""Low-level building blocks ("hazardous materials").

These modules implement the primitives and protocol steps the recipe API in
:mod:`crypto` is built from: X25519/Ed25519/XChaCha20-Poly1305 wrappers, HKDF and
HMAC chains, X3DH and the Double Ratchet state functions. They are public so that
tests, oracles and a future second implementation can check each step, but
application code (``server/``, ``client/``) should use the recipes in :mod:`crypto`.
"""
