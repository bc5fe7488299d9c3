"""Carnet's storage layer: the only code that talks to the database.

One repository per aggregate (directory, tokens, enrolment, envelopes,
throttle), composed by :class:`storage.database.Store`; the embedded
SecantusDB launcher in :mod:`storage.embedded`.
"""
