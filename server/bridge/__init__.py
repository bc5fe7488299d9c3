"""The SMTP bridge: families without the app read and answer by email (issue 7).

The bridge is the ``email-bridge`` device of each email-only guardian, with
keys held by the server (sealed with ``CARNET_BRIDGE_KEY``): it opens what is
addressed to that device, tells the family by email, shows the message on a
signed, short-lived reading page, and posts their replies (from the page or
by email) encrypted for the conversation's members, like an app device.
docs/email-bridge.md describes the modes and what each reveals to whom.

Modules: :mod:`.keyring` and :mod:`.tokens` (bridge key, sealing, signed
tokens), :mod:`.device` (sans-I/O device logic on the SDK's bookkeeping),
:mod:`.service` (device operations), :mod:`.worker` (the pass that opens mail
and sends emails), :mod:`.mail` / :mod:`.relay` (composing and handing over),
:mod:`.replies` / :mod:`.listener` (reply emails), :mod:`.pages` (reading
page), :mod:`.admin_api`, :mod:`.runtime` (app wiring), :mod:`.errors`.
"""

from aiohttp import web

from server.bridge import admin_api, pages
from server.bridge.runtime import BRIDGE, bridge_context


def setup(app: web.Application) -> None:
    """Add the bridge's routes and its ``cleanup_ctx`` (after the node's services)."""
    pages.setup(app)
    admin_api.setup(app)
    app.cleanup_ctx.append(bridge_context)


__all__ = ["BRIDGE", "bridge_context", "setup"]
