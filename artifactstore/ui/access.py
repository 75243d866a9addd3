"""Who may use the web UI: the loopback rule and the URL token (as Jupyter does it).

Bound to a loopback address (127.0.0.1, ::1, localhost) the UI answers anyone on this
machine, as any local tool does. Bound to any other address, other machines can reach
it, and the UI shows private (decrypted) projects: so every request must then carry the
**token**, a random secret made at start and printed in the URL (``?token=...``). A
request that gives it in the URL gets it back as a cookie, so the links of the pages
need not repeat it; the comparison is constant-time.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Final

__all__ = ["COOKIE", "new_token", "token_ok", "token_required"]

COOKIE: Final = "artifactstore_ui_token"
LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost."})


def token_required(host: str) -> bool:
    """Whether a UI bound to ``host`` must check a token (any non-loopback address)."""
    if host.lower() in LOOPBACK_NAMES:
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a name we cannot vouch for (it may resolve to anything)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_ok(expected: str | None, given: str | None) -> bool:
    """Whether a request that gave ``given`` may pass (always when no token is expected)."""
    if expected is None:
        return True
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
