"""The sign-in providers the server talks to (``[[issuers]]``): where to send the
browser, and who came back.

:class:`IdentityProvider` speaks to one issuer with urllib3 (a dependency of the
library already; authlib's own HTTP clients would need httpx or requests): discovery
(cached for an hour), the token call (``client_secret_post``, the PKCE verifier), then

- ``oidc``/``google``: the id_token, verified with joserfc (the JOSE library authlib
  is built on) against the issuer's JWKS (cached for five minutes, fetched again for
  an unknown ``kid``): RS256/ES256 signature, ``iss``, ``aud``, ``exp`` (60 s leeway),
  ``sub``, ``nonce``;
- ``github``: GitHub's ``GET /user`` with the access token (GitHub's OAuth 2 is not
  OpenID Connect). A ``github`` entry with ``issuer = "https://ghe.example.com"``
  names a GitHub Enterprise server (its API under ``/api/v3``).

The user is a dict kept in the session: ``subject`` (``<issuer name>#<sub>``, so two
issuers never share an id), ``email`` (only when the issuer says it is verified),
``name``, ``groups`` (an id_token's ``groups`` claim, when the issuer sends one).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Final
from urllib.parse import urlencode

import urllib3

from artifactstore.server.settings import IssuerSettings

__all__ = ["IdentityProvider", "SignInFailed"]

GOOGLE: Final = "https://accounts.google.com"
GITHUB: Final = "https://github.com"
SCOPES: Final = "openid email profile"
ALGORITHMS: Final = ("RS256", "ES256")
DISCOVERY_SECONDS: Final = 3600.0
JWKS_SECONDS: Final = 300.0


class SignInFailed(Exception):
    """The issuer could not be reached or its answer did not hold (a one-line reason)."""


_http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=15), retries=False)


def _json(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = _http.request(method, url, **kwargs)
    except urllib3.exceptions.HTTPError as exc:
        raise SignInFailed(f"the sign-in provider is unreachable ({type(exc).__name__})"
                           ) from None
    if response.status != 200:
        raise SignInFailed(f"the sign-in provider answered HTTP {response.status}")
    try:
        found = json.loads(response.data)
    except ValueError:
        raise SignInFailed("the sign-in provider's answer is not JSON") from None
    if not isinstance(found, dict):
        raise SignInFailed("the sign-in provider's answer is not a JSON object")
    return found


class IdentityProvider:
    """One ``[[issuers]]`` entry, as the server's client of it (thread-safe)."""

    def __init__(self, settings: IssuerSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.kind = settings.kind
        base = settings.issuer or (GOOGLE if settings.kind == "google" else GITHUB)
        self.issuer = base.rstrip("/")
        self._lock = threading.Lock()
        self._meta: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, Any] | None = None

    # -- endpoints -------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        if self.kind == "github":
            api = "https://api.github.com" if self.issuer == GITHUB else self.issuer + "/api/v3"
            return {"authorization_endpoint": self.issuer + "/login/oauth/authorize",
                    "token_endpoint": self.issuer + "/login/oauth/access_token",
                    "userinfo_endpoint": api + "/user"}
        with self._lock:
            if self._meta and time.monotonic() - self._meta[0] < DISCOVERY_SECONDS:
                return self._meta[1]
        meta = _json("GET", self.issuer + "/.well-known/openid-configuration")
        if meta.get("issuer", "").rstrip("/") != self.issuer:
            raise SignInFailed("the provider's discovery document names another issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(key), str):
                raise SignInFailed(f"the provider's discovery document has no {key}")
        with self._lock:
            self._meta = (time.monotonic(), meta)
        return meta

    def authorize_url(self, redirect_uri: str, state: str, nonce: str, challenge: str) -> str:
        params = {"response_type": "code", "client_id": self.settings.client_id,
                  "redirect_uri": redirect_uri, "state": state}
        if self.kind != "github":  # GitHub: no scope at all = public profile only
            params.update(scope=SCOPES, nonce=nonce, code_challenge=challenge,
                          code_challenge_method="S256")
        else:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        return str(self.metadata()["authorization_endpoint"]) + "?" + urlencode(params)

    # -- the callback ----------------------------------------------------------------

    def identify(self, code: str, redirect_uri: str, verifier: str, nonce: str
                 ) -> dict[str, Any]:
        """The signed-in user (see the module docstring) for the callback's ``code``."""
        meta = self.metadata()
        answer = _json("POST", str(meta["token_endpoint"]), body=urlencode({
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret, "code_verifier": verifier,
        }), headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "application/json"})
        if self.kind == "github":
            return self._github_user(meta, answer)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the provider sent no id_token")
        claims = self.verify_id_token(id_token, nonce)
        groups = claims.get("groups")
        return {
            "subject": f"{self.name}#{claims['sub']}",
            "email": claims.get("email") if claims.get("email_verified", True) is True
            and isinstance(claims.get("email"), str) else None,
            "name": claims.get("name") if isinstance(claims.get("name"), str) else None,
            "groups": sorted(g for g in groups if isinstance(g, str))[:200]
            if isinstance(groups, list) else [],
        }

    def _keys(self, refresh: bool) -> Any:
        from joserfc.jwk import KeySet

        with self._lock:
            cached = self._jwks
        if not refresh and cached and time.monotonic() - cached[0] < JWKS_SECONDS:
            return cached[1]
        found: Any = _json("GET", str(self.metadata()["jwks_uri"]))
        try:
            keys = KeySet.import_key_set(found)
        except (ValueError, KeyError, TypeError):
            raise SignInFailed("the provider's JWKS is not a key set") from None
        with self._lock:
            self._jwks = (time.monotonic(), keys)
        return keys

    def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of ``id_token`` once its signature and claims hold."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        token = None
        for refresh in (False, True):  # a key rotated since we fetched the JWKS
            try:
                token = jwt.decode(id_token, self._keys(refresh), algorithms=ALGORITHMS)
                break
            except JoseError as exc:
                if refresh:
                    raise SignInFailed(f"the id_token does not verify ({exc.error})") from None
            except ValueError:
                raise SignInFailed("the id_token is malformed") from None
        assert token is not None
        # ``iss`` exactly as discovery names the issuer (Google also uses the bare host)
        issuers = [str(self.metadata().get("issuer", self.issuer))]
        if self.kind == "google":
            issuers.append("accounts.google.com")
        registry = jwt.JWTClaimsRegistry(
            leeway=60, iss={"essential": True, "values": issuers},
            aud={"essential": True, "value": self.settings.client_id},
            exp={"essential": True}, sub={"essential": True},
            nonce={"essential": True, "value": nonce})
        try:
            registry.validate(token.claims)
        except JoseError as exc:
            raise SignInFailed(f"the id_token is not for this sign-in ({exc.error}: "
                               f"{exc.description})") from None
        return dict(token.claims)

    def _github_user(self, meta: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        access = answer.get("access_token")
        if not isinstance(access, str):
            raise SignInFailed("GitHub sent no access token")
        user = _json("GET", str(meta["userinfo_endpoint"]), headers={
            "Authorization": f"Bearer {access}", "Accept": "application/vnd.github+json",
            "User-Agent": "artifactstore"})
        if not isinstance(user.get("id"), int):
            raise SignInFailed("GitHub's /user answer has no id")
        return {"subject": f"{self.name}#{user['id']}",
                "email": user.get("email") if isinstance(user.get("email"), str) else None,
                "name": str(user.get("name") or user.get("login") or "")[:200] or None,
                "groups": []}
