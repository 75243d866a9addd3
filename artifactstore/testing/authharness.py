"""The server's sign-in and token routes alone, over a memory store, for their tests.

:func:`auth_harness` registers a client with a test issuer (:mod:`.oidc`), builds a
Starlette app from the real parts (the session middleware, :class:`SignIn`, the token
API, :class:`ServerAuthenticator`) plus ``GET /me`` (the caller as JSON), and serves it
on 127.0.0.1. Roles come from ``harness.roles`` (``{subject: {project: Role}}``), the
stand-in for the ``[roles]`` table until the whole server is assembled.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from artifactstore.server.principal import Principal, Role
from artifactstore.testing.oidc import OidcIssuer

__all__ = ["AuthHarness", "Team", "auth_harness", "team_server"]


@dataclass
class AuthHarness:
    url: str
    issuer: OidcIssuer
    settings: Any
    tokens: Any
    roles: dict[str, dict[str, Role]] = field(default_factory=dict)

    def role_of(self, principal: Principal, project: str) -> Role:
        held = self.roles.get(principal.subject or "", {}).get(project, Role.NONE)
        if principal.scope is not None and not principal.scope.allows(project, held):
            return min(held, principal.scope.role) if (
                principal.scope.projects is None or project in principal.scope.projects
            ) else Role.NONE
        return held


@contextmanager
def auth_harness(issuer: OidcIssuer, *, token_days: int = 90, kind: str = "oidc"
                 ) -> Iterator[AuthHarness]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from artifactstore.backends import drop_memory_store, open_backend
    from artifactstore.server.authn import ServerAuthenticator
    from artifactstore.server.httpjson import error_response
    from artifactstore.server.settings import IssuerSettings, ServerSettings
    from artifactstore.server.signin import SignIn, session_middleware
    from artifactstore.server.tokenapi import token_routes
    from artifactstore.server.tokens import TokenStore
    from artifactstore.testing.asgi import serving_app

    client = issuer.add_client([])
    store_url = f"memory://auth-{uuid.uuid4().hex[:8]}"
    settings = ServerSettings(
        store_url=store_url, secret=secrets.token_urlsafe(32).encode(),
        issuers=(IssuerSettings("company", kind, client.client_id, client.client_secret,
                                issuer.url),), token_days=token_days)
    backend = open_backend(store_url)
    tokens = TokenStore(backend, settings.secret, token_days=token_days)
    authn = ServerAuthenticator(tokens)
    harness = AuthHarness("", issuer, settings, tokens)
    signin = SignIn(settings, tokens, harness.role_of)

    async def me(request: Request) -> Response:
        try:
            who = authn.principal(request)
        except Exception as exc:  # the error answer the server gives
            return error_response(exc)
        return JSONResponse({"subject": who.subject, "email": who.email, "name": who.name,
                             "groups": sorted(who.groups), "token": who.token_id})

    routes = [*signin.routes(), *token_routes(tokens, authn, harness.role_of),
              Route("/me", me)]
    app = Starlette(routes=routes, middleware=[session_middleware(settings)])
    try:
        with serving_app(app, lifespan="off") as url:
            harness.url = url
            issuer.allow_redirect(client.client_id, f"{url}/signin/company/callback")
            yield harness
    finally:
        drop_memory_store(store_url)


@dataclass
class Team:
    """A whole team server with sign-in (:func:`team_server`)."""

    url: str
    issuer: OidcIssuer
    settings: Any
    tokens: Any

    @property
    def store_url(self) -> str:
        return f"artifactstore+{self.url}/"


@contextmanager
def team_server(issuer: OidcIssuer, store_url: str, roles: dict[str, Any], *,
                authorizer: Callable[[Any, Any], Any], audit: Callable[[Any], Any] | None = None,
                token_days: int = 90) -> Iterator[Team]:
    """``create_server_app`` over ``store_url`` with sign-in through ``issuer``, the
    ``[roles]`` table ``roles`` read by ``authorizer(settings, backend)`` (ROLES's
    ``KeyPolicy.from_settings``) and the trail ``audit(backend)``, served on 127.0.0.1;
    the tokens of its store for the test to make or check."""
    from artifactstore.backends import open_backend_stack
    from artifactstore.server.authmount import sign_in_authenticator
    from artifactstore.server.settings import IssuerSettings, ServerSettings
    from artifactstore.testing.teamserver import TEST_SECRET, serving_team

    client = issuer.add_client([])
    settings = ServerSettings(
        store_url=store_url, secret=TEST_SECRET, roles=roles, token_days=token_days,
        issuers=(IssuerSettings("company", "oidc", client.client_id, client.client_secret,
                                issuer.url),))
    backend = open_backend_stack(store_url)
    authn = sign_in_authenticator(settings, backend)
    policy = authorizer(settings, backend)
    try:
        with serving_team(settings, backend=backend, authenticator=authn, authorizer=policy,
                          audit=audit(backend) if audit is not None else None,
                          roles_of=getattr(policy, "roles", None)) as url:
            issuer.allow_redirect(client.client_id, f"{url}/signin/company/callback")
            yield Team(url, issuer, settings, authn.tokens)
    finally:
        backend.close()
