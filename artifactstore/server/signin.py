"""Sign-in: browsers through an OpenID Connect issuer, the CLI through a browser.

**Browsers** (``/signin``, ``/signin/<issuer>``, ``/signin/<issuer>/callback``,
``POST /signout``): the authorization code flow with PKCE (S256), ``state`` (bound to
the session: a callback this browser did not start is refused) and ``nonce`` (bound
to the id_token). Scopes ``openid email profile`` only: identity, never a mailbox or
repositories. The id_token is verified with joserfc (authlib's JOSE library) against
the issuer's JWKS: signature (RS256 or ES256 only), ``iss``, ``aud`` (our client id),
``exp``, ``nonce``. The user lands in a session cookie (Starlette's SessionMiddleware,
signed with the server secret; HttpOnly, SameSite=Lax, Secure when ``public_url`` is
https). After sign-in the browser goes back only to a path of this server
(:func:`safe_next`: no open redirect). Kinds (``[[issuers]] kind``): ``oidc``
(discovery at ``<issuer>/.well-known/openid-configuration``), ``google`` (the same with
https://accounts.google.com), ``github``: GitHub's OAuth 2 is *not* OpenID Connect:
no id_token and no scopes (public profile only); the user is who ``GET /user`` names
with the access token, which is used for that one call and dropped.

**The CLI** (``artifactstore login https://host``, RFC 8252 loopback redirect):
``GET /login/cli?port=N&state=S&code_challenge=C`` signs the browser in (above), then
sends it to ``http://127.0.0.1:N/callback?code=ONE_TIME&state=S``; the CLI posts the
code and its PKCE verifier to ``POST /v1/login/exchange`` and gets an API token
(:mod:`.tokens`). The one-time code is signed by the server secret (any instance can
check it), lives 120 s, and is spent by a create-only ``server/logincodes/<hash>``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from artifactstore.core.errors import (
    ArtifactStoreError,
    InvalidInputError,
    NotSignedInError,
)
from artifactstore.server.authn import SESSION_USER, origin_of_request, same_origin
from artifactstore.server.httpjson import error_response, json_body
from artifactstore.server.principal import Principal, Role
from artifactstore.server.providers import IdentityProvider, SignInFailed
from artifactstore.server.settings import ServerSettings
from artifactstore.server.tokens import RoleOf, TokenRecord, TokenStore

__all__ = ["SESSION_COOKIE", "SignIn", "safe_next", "session_middleware", "session_options"]

SESSION_COOKIE: Final = "artifactstore_session"
SESSION_SECONDS: Final = 12 * 3600
FLOW_SECONDS: Final = 600
CODE_SECONDS: Final = 120
LOGIN_CODES: Final = "server/logincodes/"
_STATE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43,128}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def safe_next(value: str | None) -> str:
    """``value`` if it is a path of this server, else ``/``: never another site
    (``https://evil``, ``//evil``, ``/\\evil``, control characters)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x21 or c == "\\" for c in value) or len(value) > 2000:
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


def session_options(settings: ServerSettings) -> dict[str, Any]:
    """SessionMiddleware's options: the signed session cookie (HttpOnly; SameSite=Lax so
    it goes along with the issuer's redirect back, but not with other sites' POSTs;
    Secure over https)."""
    secure = bool(settings.public_url and settings.public_url.startswith("https://"))
    return {"secret_key": settings.secret.decode(), "session_cookie": SESSION_COOKIE,
            "max_age": SESSION_SECONDS, "same_site": "lax", "https_only": secure}


def session_middleware(settings: ServerSettings) -> Middleware:
    return Middleware(SessionMiddleware, **session_options(settings))


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1>{body}", status_code=status,
        headers={"Content-Security-Policy": "default-src 'none'; form-action 'self'",
                 "Cache-Control": "no-store"})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class SignIn:
    """The sign-in routes of one server (:meth:`routes`)."""

    def __init__(self, settings: ServerSettings, tokens: TokenStore,
                 role_of: RoleOf | None = None) -> None:
        self.settings = settings
        self.tokens = tokens
        self.role_of = role_of
        self.providers = {i.name: IdentityProvider(i) for i in settings.issuers}
        self._codes = URLSafeTimedSerializer(settings.secret, salt="artifactstore-cli-login")

    def routes(self) -> list[Route]:
        return [
            Route("/signin", self.choose),
            Route("/signin/{issuer}", self.start),
            Route("/signin/{issuer}/callback", self.callback),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/login/cli", self.login_cli),
            Route("/v1/login/exchange", self.exchange, methods=["POST"]),
        ]

    def _base(self, request: Request) -> str:
        return origin_of_request(request, self.settings.public_url)

    # -- browsers --------------------------------------------------------------------

    def choose(self, request: Request) -> Response:
        nxt = safe_next(request.query_params.get("next"))
        if not self.providers:
            return _page("Sign-in is not configured",
                         "<p>This server has no [[issuers]] in its settings.</p>", 503)
        items = "".join(
            f'<li><a href="/signin/{html.escape(name)}?{html.escape(urlencode({"next": nxt}))}">'
            f"Sign in with {html.escape(name)}</a></li>" for name in self.providers)
        return _page("Sign in to artifactstore", f"<ul>{items}</ul>")

    def start(self, request: Request) -> Response:
        provider = self.providers.get(request.path_params["issuer"])
        if provider is None:
            return _page("Unknown sign-in provider", '<p><a href="/signin">Back</a></p>', 404)
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        request.session["signin"] = {
            "issuer": provider.name, "state": state, "nonce": nonce, "verifier": verifier,
            "next": safe_next(request.query_params.get("next")), "at": int(time.time())}
        redirect_uri = f"{self._base(request)}/signin/{provider.name}/callback"
        try:
            url = provider.authorize_url(redirect_uri, state, nonce, _s256(verifier))
        except SignInFailed as exc:
            return _page("Sign-in failed", f"<p>{html.escape(str(exc))}</p>", 502)
        return RedirectResponse(url, status_code=302)

    def callback(self, request: Request) -> Response:
        name = request.path_params["issuer"]
        provider = self.providers.get(name)
        flow: Any = request.session.pop("signin", None)
        params = request.query_params
        given = params.get("state") or ""
        if (provider is None or not isinstance(flow, dict) or flow.get("issuer") != name
                or not secrets.compare_digest(str(flow.get("state", "")).encode(),
                                              given.encode())
                or time.time() - int(flow.get("at", 0)) > FLOW_SECONDS):
            # a callback this browser did not start (login CSRF) or a stale one
            return _page("Sign-in failed", "<p>This sign-in was not started here or took "
                         'too long. <a href="/signin">Sign in again</a>.</p>', 400)
        if params.get("error") or not params.get("code"):
            return _page("Sign-in refused", "<p>The sign-in provider said: "
                         f"{html.escape(params.get('error', 'no code')[:200])}.</p>", 400)
        redirect_uri = f"{self._base(request)}/signin/{name}/callback"
        try:
            user = provider.identify(params["code"], redirect_uri, flow["verifier"],
                                     flow["nonce"])
        except SignInFailed as exc:
            return _page("Sign-in failed", f"<p>{html.escape(str(exc))}</p>", 400)
        request.session.clear()  # a fresh session for the signed-in user (fixation)
        request.session[SESSION_USER] = user
        return RedirectResponse(safe_next(flow.get("next")), status_code=303)

    def signout(self, request: Request) -> Response:
        if not same_origin(request, self.settings.public_url):
            return _page("Refused", "<p>Sign out from this server's own pages.</p>", 403)
        request.session.clear()
        return RedirectResponse("/signin", status_code=303)

    # -- the CLI ---------------------------------------------------------------------

    def login_cli(self, request: Request) -> Response:
        params = request.query_params
        port, state, challenge = (params.get("port", ""), params.get("state", ""),
                                  params.get("code_challenge", ""))
        if not (port.isdigit() and 1024 <= int(port) <= 65535 and _STATE.fullmatch(state)
                and _CHALLENGE.fullmatch(challenge)):
            return _page("Bad login request", "<p>Start again with artifactstore login "
                         "URL.</p>", 400)
        user = request.session.get(SESSION_USER)
        if not isinstance(user, dict):
            back = "/login/cli?" + urlencode({"port": port, "state": state,
                                              "code_challenge": challenge})
            return RedirectResponse("/signin?" + urlencode({"next": back}), status_code=302)
        code = self._codes.dumps({"user": user, "challenge": challenge,
                                  "nonce": secrets.token_hex(8)})
        # the loopback address, never a host the request names (RFC 8252 section 7.3)
        target = f"http://127.0.0.1:{int(port)}/callback?" + urlencode(
            {"code": code, "state": state})
        return RedirectResponse(target, status_code=302)

    async def exchange(self, request: Request) -> Response:
        try:
            body = await json_body(request, limit=16384)
            token, record = await run_in_threadpool(self._exchange, body)
        except (ArtifactStoreError, KeyError, TypeError) as exc:
            return error_response(exc)
        return JSONResponse({"token": token, **record.public()},
                            headers={"Cache-Control": "no-store"})

    def _exchange(self, body: dict[str, Any]) -> tuple[str, TokenRecord]:
        code, verifier = body.get("code"), body.get("code_verifier")
        if not isinstance(code, str) or not isinstance(verifier, str) \
                or not _VERIFIER.fullmatch(verifier):
            raise InvalidInputError("post {\"code\": ..., \"code_verifier\": ...}")
        try:
            data = self._codes.loads(code, max_age=CODE_SECONDS)
        except SignatureExpired:
            raise NotSignedInError("the login code expired; run artifactstore "
                                   "login URL again") from None
        except BadSignature:
            raise NotSignedInError("this login code is not valid here; run "
                                   "artifactstore login URL again") from None
        if not secrets.compare_digest(_s256(verifier).encode(),
                                      str(data.get("challenge")).encode()):
            raise NotSignedInError("the login code does not match this client's "
                                   "verifier; run artifactstore login URL again")
        spent = LOGIN_CODES + hashlib.sha256(code.encode()).hexdigest()
        if not self.tokens.backend.put_if_absent(spent, b"{}"):
            raise NotSignedInError("this login code was used already; run "
                                   "artifactstore login URL again")
        user = data["user"]
        principal = Principal(subject=user["subject"], email=user.get("email"),
                              name=user.get("name"),
                              groups=frozenset(user.get("groups") or ()))
        host = str(body.get("host") or "cli")[:40]
        return self.tokens.create(principal, name=re.sub(r"[^\w .@:/+-]", "-",
                                                         f"login {host}"), role=Role.ADMIN)
