"""A real OpenID Connect issuer for tests, on 127.0.0.1 (the team server's sign-in).

Built from authlib's server parts, not imitated: a Flask app whose
``AuthorizationServer`` runs the authorization code grant with PKCE (``CodeChallenge``)
and OpenID Connect (``OpenIDCode``: an ``id_token`` signed RS256 or ES256), a JWKS
endpoint and the discovery document ``/.well-known/openid-configuration``. werkzeug
serves it in a thread (threaded, so the server under test may call it while a browser
waits on it).

The same app answers GitHub's OAuth 2 paths (``/login/oauth/authorize``,
``/login/oauth/access_token``, ``/api/v3/user``: a GitHub Enterprise server's
layout), for the server's ``github`` kind, which is not OpenID Connect.

Users are what the test says (:meth:`OidcIssuer.add_user`: sub, email, name, groups)
and consent is automatic for the *current* user (:meth:`OidcIssuer.sign_in_as`, or a
``login_hint`` naming a sub). Clients are registered by the test
(:meth:`OidcIssuer.add_client`). ``id_token_claims`` overrides claims of the next
id_tokens (a wrong ``aud``, an ``exp`` in the past) for the attack tests.
"""

from __future__ import annotations

import secrets
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

__all__ = ["OidcClient", "OidcIssuer", "OidcUser", "github_id", "oidc_issuer"]


@dataclass(frozen=True)
class OidcUser:
    sub: str
    email: str
    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class OidcClient:
    """A registered relying party (authlib's ClientMixin methods)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile", "groups"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code:
    """One issued authorization code (authlib's AuthorizationCodeMixin)."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: OidcUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class OidcIssuer:
    """The issuer's state and its Flask app; :func:`oidc_issuer` serves it."""

    def __init__(self, alg: str = "RS256") -> None:
        from joserfc.jwk import ECKey, RSAKey

        self.alg = alg
        self.key: Any = (RSAKey.generate_key(2048) if alg == "RS256"
                         else ECKey.generate_key("P-256"))
        self.kid = secrets.token_hex(4)
        self.url = ""  # set once served
        self.users: dict[str, OidcUser] = {}
        self.clients: dict[str, OidcClient] = {}
        self.current: str | None = None
        self.id_token_claims: dict[str, Any] = {}
        #: how many times each route was called (the tests check the flow went here)
        self.calls: dict[str, int] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, OidcUser] = {}
        self._lock = threading.Lock()

    def add_user(self, sub: str, email: str, name: str, groups: tuple[str, ...] = ()
                 ) -> OidcUser:
        user = self.users[sub] = OidcUser(sub, email, name, tuple(groups))
        if self.current is None:
            self.current = sub
        return user

    def sign_in_as(self, sub: str | None) -> None:
        """The user whose consent is given automatically (None: nobody, the flow fails)."""
        self.current = sub

    def add_client(self, redirect_uris: tuple[str, ...] | list[str],
                   client_id: str | None = None) -> OidcClient:
        client = OidcClient(client_id or "client-" + secrets.token_hex(4),
                            secrets.token_urlsafe(24), tuple(redirect_uris))
        self.clients[client.client_id] = client
        return client

    def server_toml(self, client: OidcClient, roles: str, *, head: str = "",
                    secret_env: str = "TEST_OIDC_SECRET") -> str:
        """A team server's ``server.toml`` signing in through this issuer as ``client``
        (issuer name ``company``; the client secret in ``$secret_env``), with ``head``
        (top-level settings) before and the ``[roles]`` table's lines ``roles``."""
        return (f"{head}\n[[issuers]]\nname = \"company\"\nkind = \"oidc\"\n"
                f"issuer = \"{self.url}\"\nclient_id = \"{client.client_id}\"\n"
                f"client_secret_env = \"{secret_env}\"\n\n[roles]\n{roles}\n")

    def allow_redirect(self, client_id: str, redirect_uri: str) -> None:
        """Register one more redirect URI of ``client_id`` (known once its server runs)."""
        client = self.clients[client_id]
        self.clients[client_id] = replace(
            client, redirect_uris=(*client.redirect_uris, redirect_uri))

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        public.update(kid=self.kid, use="sig", alg=self.alg)
        return {"keys": [public]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.alg],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
        }

    def app(self) -> Any:
        """The Flask app (authlib's AuthorizationServer wired to this issuer)."""
        from authlib.integrations.flask_oauth2 import AuthorizationServer
        from authlib.oauth2 import OAuth2Error
        from authlib.oauth2.rfc6749 import grants
        from authlib.oauth2.rfc7636 import CodeChallenge
        from authlib.oidc.core import UserInfo
        from authlib.oidc.core.grants import OpenIDCode
        from flask import Flask, jsonify, request

        issuer = self

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar = ["client_secret_basic",
                                                     "client_secret_post"]

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                with issuer._lock:
                    issuer._codes[code] = _Code(
                        code, req.client.client_id, req.payload.redirect_uri, req.scope,
                        req.user, data.get("nonce"), data.get("code_challenge"),
                        data.get("code_challenge_method"))

            def query_authorization_code(self, code: str, client: Any) -> _Code | None:
                with issuer._lock:
                    found = issuer._codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: _Code) -> None:
                with issuer._lock:  # one use only
                    issuer._codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: _Code) -> OidcUser:
                return authorization_code.user

        class IdToken(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, req: Any) -> bool:
                with issuer._lock:
                    return any(c.nonce == nonce for c in issuer._codes.values())

            def resolve_client_private_key(self, client: Any) -> Any:
                return issuer.key

            def get_client_algorithm(self, client: Any) -> str:
                return issuer.alg

            def get_encode_header(self, client: Any) -> dict[str, str]:
                return {"alg": issuer.alg, "kid": issuer.kid}

            def get_client_claims(self, client: Any) -> dict[str, Any]:
                now = int(time.time())
                claims = {"iss": issuer.url, "aud": [client.get_client_id()],
                          "iat": now, "exp": now + 300}
                claims.update(issuer.id_token_claims)
                return claims

            def generate_user_info(self, user: OidcUser, scope: str) -> UserInfo:
                info = UserInfo(sub=user.sub)
                if "email" in scope.split():
                    info.update(email=user.email, email_verified=True)
                if "profile" in scope.split():
                    info["name"] = user.name
                info["groups"] = list(user.groups)
                return info

        app = Flask("artifactstore-test-oidc")
        def save_token(token: dict[str, Any], req: Any) -> None:
            with self._lock:  # for the GitHub-shaped /api/v3/user
                self._access[token["access_token"]] = req.user

        server = AuthorizationServer(app, query_client=self.clients.get,
                                     save_token=save_token)
        server.register_grant(CodeGrant, [IdToken(require_nonce=True),
                                          CodeChallenge(required=True)])

        def count(name: str) -> None:
            with self._lock:
                self.calls[name] = self.calls.get(name, 0) + 1

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            count("discovery")
            return jsonify(self.discovery())

        @app.get("/jwks")
        def jwks() -> Any:
            count("jwks")
            return jsonify(self.jwks())

        @app.get("/authorize")
        @app.get("/login/oauth/authorize")  # GitHub's path (an Enterprise server's too)
        def authorize() -> Any:
            count("authorize")
            sub = request.args.get("login_hint") or self.current
            user = self.users.get(sub or "")
            try:
                grant = server.get_consent_grant(end_user=user)
            except OAuth2Error as error:
                return server.handle_error_response(None, error)
            # consent is automatic; no user (None) is a refusal: access_denied
            return server.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        @app.post("/login/oauth/access_token")
        def token() -> Any:
            count("token")
            return server.create_token_response()

        @app.get("/api/v3/user")  # GitHub's GET /user: OAuth 2 without OpenID Connect
        def github_user() -> Any:
            count("user")
            access = request.headers.get("Authorization", "").removeprefix("Bearer ")
            with self._lock:
                user = self._access.get(access)
            if user is None:
                return jsonify({"message": "Bad credentials"}), 401
            return jsonify({"id": github_id(user.sub), "login": user.sub, "name": user.name,
                            "email": user.email})

        return app


def github_id(sub: str) -> int:
    """The numeric id the GitHub-shaped ``/api/v3/user`` gives user ``sub``."""
    return zlib.crc32(sub.encode())


@contextmanager
def oidc_issuer(alg: str = "RS256") -> Iterator[OidcIssuer]:
    """An :class:`OidcIssuer` served on 127.0.0.1 (any free port) until the block ends."""
    from werkzeug.serving import make_server

    issuer = OidcIssuer(alg)
    server = make_server("127.0.0.1", 0, issuer.app(), threaded=True)
    issuer.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()

