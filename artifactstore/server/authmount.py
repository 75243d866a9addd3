"""Sign-in, tokens and the web UI, added to the server app (:mod:`.app` calls these).

- :func:`sign_in_authenticator`: the Authenticator of a server with sign-in (API
  tokens in the backing store, then the browser session), :mod:`.authn`;
- :func:`add_sign_in`: the routes of :mod:`.signin` (browsers and ``artifactstore
  login``) and :mod:`.tokenapi`, and the session cookie's middleware;
- :func:`add_web_ui`: the web UI behind :mod:`.uimount`'s gate, as the router's default
  (what answers a path no route claims), so every route of the protocol (``/v1/...``,
  ``/healthz``...), including any added later, comes first.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware

from artifactstore.backends.base import Backend
from artifactstore.server.authn import ServerAuthenticator
from artifactstore.server.gate import Authenticator, Authorizer
from artifactstore.server.settings import ServerSettings
from artifactstore.server.signin import SignIn, session_options
from artifactstore.server.tokenapi import token_routes
from artifactstore.server.tokens import TokenStore

__all__ = ["add_sign_in", "add_web_ui", "sign_in_authenticator"]

_log = logging.getLogger("artifactstore.server")


def sign_in_authenticator(settings: ServerSettings, backend: Backend) -> ServerAuthenticator:
    tokens = TokenStore(backend, settings.secret, token_days=settings.token_days)
    return ServerAuthenticator(tokens, settings.public_url)


def add_sign_in(app: Starlette, settings: ServerSettings, authenticator: ServerAuthenticator,
                authorizer: Authorizer) -> None:
    """Add the sign-in and token routes and the session middleware to ``app``."""
    server_admin: Any = getattr(authorizer, "server_admin", None)
    signin = SignIn(settings, authenticator.tokens, authorizer.role)
    app.router.routes.extend([*signin.routes(), *token_routes(
        authenticator.tokens, authenticator, authorizer.role, server_admin)])
    app.add_middleware(SessionMiddleware, **session_options(settings))


def add_web_ui(app: Starlette, settings: ServerSettings, authenticator: Authenticator,
               authorizer: Authorizer) -> Any:
    """Serve the gated web UI for every path no route claims; the store it opened
    (the caller closes it), or None when the UI cannot be served (said in the log)."""
    from artifactstore.core.errors import ArtifactStoreError
    from artifactstore.server.uimount import server_ui

    try:
        gate, store = server_ui(settings.store_url, authenticator, authorizer,
                                settings.store_options)
    except (ArtifactStoreError, ImportError) as exc:
        _log.warning("the web UI is off: %s", " ".join(str(exc).split())[:300])
        return None
    app.router.default = gate
    return store
