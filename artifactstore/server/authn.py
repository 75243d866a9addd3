"""Who is asking (gate.py's :class:`~artifactstore.server.gate.Authenticator`): the
bearer token, else the browser session, else nobody.

- ``Authorization: Bearer ast1_...``: :class:`~artifactstore.server.tokens.TokenStore`
  verifies it; any other ``Authorization`` value is refused (NotSignedInError), never
  taken as anonymous, so a client that sent a broken credential learns it.
- the session cookie (Starlette's SessionMiddleware, signed with the server secret,
  set by :mod:`artifactstore.server.signin`): the signed-in user, with no token scope.
  A browser sends the cookie to any request a page makes, so the session counts
  for a request that changes something (not GET/HEAD) only when it comes from our own
  origin (:func:`same_origin`): a page of another site cannot act for the user (CSRF).
  Bearer tokens are not sent by browsers on their own, so they need no such check.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from artifactstore.core.errors import NotAuthorizedError, NotSignedInError
from artifactstore.server.principal import ANONYMOUS, Principal
from artifactstore.server.tokens import TokenStore

__all__ = ["SESSION_USER", "ServerAuthenticator", "origin_of_request", "same_origin",
           "session_principal"]

SESSION_USER: Final = "user"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_of_request(request: HTTPConnection, public_url: str | None) -> str:
    """This server's origin as browsers see it: ``public_url``'s, else the request's
    scheme and Host."""
    if public_url:
        parts = urlsplit(public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return f"{request.url.scheme}://{request.headers.get('host', '')}".lower()


def same_origin(request: HTTPConnection, public_url: str | None) -> bool:
    """Whether the browser says this request comes from a page of our own origin:
    the ``Origin`` header equals ours, or (no Origin, or ``null``) ``Sec-Fetch-Site``
    is ``same-origin``. A request with neither is not trusted."""
    origin = request.headers.get("origin")
    # "null": a page with Referrer-Policy no-referrer (ours) posting a form; the browser
    # still says where the request comes from in Sec-Fetch-Site
    if origin is not None and origin != "null":
        return origin.lower() == origin_of_request(request, public_url)
    return request.headers.get("sec-fetch-site") == "same-origin"


def session_principal(request: HTTPConnection) -> Principal | None:
    """The user the session cookie names (None without a session or a user in it)."""
    if "session" not in request.scope:
        return None
    user: Any = request.session.get(SESSION_USER)
    if not isinstance(user, dict) or not isinstance(user.get("subject"), str):
        return None
    groups = user.get("groups") or []
    return Principal(subject=user["subject"], email=user.get("email"),
                     name=user.get("name"),
                     groups=frozenset(g for g in groups if isinstance(g, str)))


class ServerAuthenticator:
    """The team server's Authenticator (tokens first, then the session)."""

    def __init__(self, tokens: TokenStore, public_url: str | None = None) -> None:
        self.tokens = tokens
        self.public_url = public_url

    def principal(self, request: HTTPConnection) -> Principal:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise NotSignedInError("send the token as Authorization: Bearer ast1_...; "
                                       "sign in with artifactstore login URL")
            return self.tokens.verify(value.strip())
        user = session_principal(request)
        if user is None:
            return ANONYMOUS
        method = request.scope.get("method", "GET")
        if method not in SAFE_METHODS and not same_origin(request, self.public_url):
            # the cookie rides along with any page's request: only our pages may write
            raise NotAuthorizedError("a signed-in browser may change things only from "
                                     "this server's own pages (cross-site request refused)")
        return user
