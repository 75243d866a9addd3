"""Browser sign-in through a real OpenID Connect issuer (authlib, on 127.0.0.1), the
session cookie, CSRF and open-redirect defences (artifactstore/server/signin.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from artifactstore.server.providers import IdentityProvider, SignInFailed
from artifactstore.server.settings import IssuerSettings, ServerSettings
from artifactstore.server.signin import SESSION_COOKIE, safe_next
from artifactstore.testing.authharness import AuthHarness, auth_harness

if TYPE_CHECKING:
    from artifactstore.testing.browser import SealedPage
    from artifactstore.testing.oidc import OidcIssuer

http = urllib3.PoolManager(retries=False)


@pytest.fixture
def harness(oidc_issuer: OidcIssuer) -> Iterator[AuthHarness]:
    with auth_harness(oidc_issuer) as found:
        yield found


def browser_sign_in(page: SealedPage, harness: AuthHarness, path: str = "/me") -> Any:
    page.allow(harness.issuer.url)
    page.open(f"{harness.url}/signin?next={path}")
    page.click("a")  # the one configured issuer
    page.wait_for(f"location.pathname === {json.dumps(path.split('?')[0])}")
    return json.loads(page.page.inner_text("body"))


def test_a_browser_signs_in_through_the_issuer(sealed_page: SealedPage,
                                               harness: AuthHarness) -> None:
    me = browser_sign_in(sealed_page, harness)
    assert me["subject"] == "company#alice"
    assert me["email"] == "alice@example.com"
    assert me["groups"] == ["ml-team"]
    assert harness.issuer.calls["authorize"] == 1
    assert harness.issuer.calls["token"] == 1
    cookie = next(c for c in sealed_page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    assert not cookie["secure"]  # http on 127.0.0.1; https public_url sets Secure


def test_sign_out_needs_a_post_from_our_own_pages(sealed_page: SealedPage,
                                                  harness: AuthHarness) -> None:
    browser_sign_in(sealed_page, harness)
    request = sealed_page.page.request
    # another site's form posting to /signout (the browser sends its own Origin)
    refused = request.post(harness.url + "/signout",
                           headers={"Origin": "http://evil.example"}, max_redirects=0)
    assert refused.status == 403
    assert request.get(harness.url + "/me").json()["subject"] == "company#alice"
    assert request.get(harness.url + "/signout", max_redirects=0).status == 405
    # Origin "null" (a no-referrer page) is not ours unless Sec-Fetch-Site says so
    assert request.post(harness.url + "/signout", headers={"Origin": "null"},
                        max_redirects=0).status == 403
    assert request.post(harness.url + "/signout", max_redirects=0, headers={
        "Origin": "null", "Sec-Fetch-Site": "cross-site"}).status == 403
    done = request.post(harness.url + "/signout", headers={"Origin": harness.url},
                        max_redirects=0)
    assert done.status == 303
    assert request.get(harness.url + "/me").json()["subject"] is None


def test_a_session_makes_tokens_only_from_our_own_pages(sealed_page: SealedPage,
                                                       harness: AuthHarness) -> None:
    browser_sign_in(sealed_page, harness)
    request = sealed_page.page.request
    body = {"name": "from the browser", "role": "reader"}
    refused = request.post(harness.url + "/v1/tokens", data=body,
                           headers={"Origin": "http://evil.example"})
    assert refused.status == 403
    assert refused.json()["error"] == "not_authorized"
    bare = request.post(harness.url + "/v1/tokens", data=body)  # no Origin: not trusted
    assert bare.status == 403
    made = request.post(harness.url + "/v1/tokens", data=body,
                        headers={"Origin": harness.url})
    assert made.status == 201
    assert made.json()["subject"] == "company#alice"
    assert request.get(harness.url + "/v1/tokens").json()["tokens"][0]["name"] == \
        "from the browser"


@pytest.mark.parametrize("target", [
    "https://evil.example/x", "//evil.example/x", "/\\evil.example", "/\t/evil.example",
    "http:/evil.example", "javascript:alert(1)", "", None,
])
def test_no_open_redirect_after_sign_in(target: str | None) -> None:
    assert safe_next(target) == "/"


def test_the_next_path_survives_sign_in_and_others_do_not(
        sealed_page: SealedPage, harness: AuthHarness) -> None:
    sealed_page.allow(harness.issuer.url)
    sealed_page.open(f"{harness.url}/signin?next=//evil.example/steal")
    sealed_page.click("a")
    sealed_page.wait_for("location.pathname === '/'")
    assert urlsplit(sealed_page.page.url).netloc == urlsplit(harness.url).netloc
    assert safe_next("/p/demo/?status=finished") == "/p/demo/?status=finished"


def test_a_callback_this_browser_did_not_start_is_refused(harness: AuthHarness) -> None:
    # login CSRF: an attacker's own code and state, delivered to the victim's browser
    response = http.request("GET", f"{harness.url}/signin/company/callback?code=x&state=y",
                            redirect=False)
    assert response.status == 400
    assert b"not started here" in response.data


def test_an_issuer_refusal_signs_nobody_in(sealed_page: SealedPage,
                                           harness: AuthHarness) -> None:
    harness.issuer.sign_in_as(None)  # nobody at the issuer consents
    sealed_page.allow(harness.issuer.url)
    sealed_page.open(f"{harness.url}/signin?next=/me")
    sealed_page.click("a")
    sealed_page.wait_for("document.readyState === 'complete' && "
                         "location.pathname.endsWith('/callback')")
    assert "Sign-in refused" in sealed_page.page.inner_text("body")
    assert sealed_page.page.request.get(harness.url + "/me").json()["subject"] is None


@dataclass
class Tampered:
    claims: dict[str, Any]
    reason: str


@pytest.mark.parametrize("case", [
    Tampered({"aud": ["another-client"]}, "aud"),
    Tampered({"iss": "http://127.0.0.1:1/other"}, "iss"),
    Tampered({"exp": 1_000_000_000}, "exp"),
], ids=lambda c: c.reason)
def test_id_tokens_for_something_else_are_refused(sealed_page: SealedPage,
                                                  harness: AuthHarness,
                                                  case: Tampered) -> None:
    harness.issuer.id_token_claims = case.claims
    sealed_page.allow(harness.issuer.url)
    sealed_page.open(f"{harness.url}/signin?next=/me")
    sealed_page.click("a")
    sealed_page.wait_for("location.pathname.endsWith('/callback')")
    body = sealed_page.page.inner_text("body")
    assert "Sign-in failed" in body
    assert case.reason in body
    assert sealed_page.page.request.get(harness.url + "/me").json()["subject"] is None


def test_an_id_token_signed_by_another_key_is_refused(oidc_issuer: OidcIssuer) -> None:
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    client = oidc_issuer.add_client(["http://127.0.0.1:9/cb"])
    provider = IdentityProvider(IssuerSettings("company", "oidc", client.client_id,
                                               client.client_secret, oidc_issuer.url))
    claims = {"iss": oidc_issuer.url, "aud": client.client_id, "sub": "alice",
              "exp": 4_000_000_000, "nonce": "n" * 20}
    forged = jwt.encode({"alg": "RS256", "kid": oidc_issuer.kid}, claims,
                        RSAKey.generate_key(2048))
    with pytest.raises(SignInFailed, match="does not verify"):
        provider.verify_id_token(forged, "n" * 20)
    genuine = jwt.encode({"alg": oidc_issuer.alg, "kid": oidc_issuer.kid}, claims,
                         oidc_issuer.key)
    assert provider.verify_id_token(genuine, "n" * 20)["sub"] == "alice"
    with pytest.raises(SignInFailed, match="nonce"):
        provider.verify_id_token(genuine, "m" * 20)
    unsigned = jwt.encode({"alg": "HS256"}, claims, _oct_key())
    with pytest.raises(SignInFailed):
        provider.verify_id_token(unsigned, "n" * 20)


def _oct_key() -> Any:
    from joserfc.jwk import OctKey

    return OctKey.generate_key(256)


def test_an_es256_issuer_works_too(sealed_page: SealedPage) -> None:
    from artifactstore.testing.oidc import oidc_issuer

    with oidc_issuer("ES256") as issuer:
        issuer.add_user("bob", "bob@example.com", "Bob")
        with auth_harness(issuer) as harness:
            assert browser_sign_in(sealed_page, harness)["subject"] == "company#bob"


def test_settings_require_a_strong_secret() -> None:
    from artifactstore.core.errors import ConfigurationError
    from artifactstore.server.settings import load_settings

    with pytest.raises(ConfigurationError, match="ARTIFACTSTORE_SERVER_SECRET"):
        load_settings(store="memory://x", environ={"ARTIFACTSTORE_SERVER_SECRET": "short"})
    assert isinstance(load_settings(store="memory://x", environ={
        "ARTIFACTSTORE_SERVER_SECRET": "s" * 32}), ServerSettings)


# -- the CLI: artifactstore login (RFC 8252 loopback redirect) ----------------------


def cli_login(page: SealedPage, server: str, issuer_url: str, env: dict[str, str],
              *extra: str) -> tuple[int, Any, str]:
    """Run ``artifactstore login SERVER --no-browser --json``, open the URL it prints
    in ``page`` (the real redirect flow), and return (exit code, its JSON, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "artifactstore", "login", server, "--no-browser", "--json",
         "--timeout", "60", *extra], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # the command prints the URL, then waits for the browser
        lines.append(line)
        if line.startswith(server + "/login/cli?"):
            break
    url = lines[-1].strip()
    query = parse_qs(urlsplit(url).query)
    page.allow(issuer_url)
    page.allow(f"http://127.0.0.1:{query['port'][0]}")
    page.open(url)
    if urlsplit(page.page.url).path == "/signin":  # not signed in yet: choose the issuer
        page.click("a")
    out, err = proc.communicate(timeout=60)
    page.wait_for("location.pathname === '/callback'")
    assert "Signed in" in page.page.inner_text("body")
    return proc.returncode, json.loads(out) if out.strip() else None, "".join(lines) + err


@pytest.fixture
def cli_env(tmp_path: Any) -> dict[str, str]:
    env = dict(os.environ)
    env["ARTIFACTSTORE_CONFIG_DIR"] = str(tmp_path / "config")
    env.pop("ARTIFACTSTORE_TOKEN", None)
    return env


def test_the_cli_signs_in_through_the_browser(sealed_page: SealedPage,
                                              harness: AuthHarness,
                                              cli_env: dict[str, str]) -> None:
    code, answer, err = cli_login(sealed_page, harness.url, harness.issuer.url, cli_env)
    assert code == 0, err
    assert answer["subject"] == "company#alice"
    saved = Path(cli_env["ARTIFACTSTORE_CONFIG_DIR"]) / "tokens.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    token = json.loads(saved.read_text())[harness.url]["token"]
    assert token.startswith("ast1_")
    assert token not in err  # the token is never printed
    me = json.loads(http.request("GET", harness.url + "/me",
                                 headers={"Authorization": f"Bearer {token}"}).data)
    assert (me["subject"], me["token"]) == ("company#alice", answer["token_id"])
    # the browser also has a session now: a second login needs no issuer round trip
    before = harness.issuer.calls["authorize"]
    assert cli_login(sealed_page, harness.url, harness.issuer.url, cli_env)[0] == 0
    assert harness.issuer.calls["authorize"] == before
    # logout revokes the saved token on the server and forgets it
    out = subprocess.run([sys.executable, "-m", "artifactstore", "logout", harness.url,
                          "--json"], env=cli_env, capture_output=True, text=True,
                         check=False)
    assert json.loads(out.stdout) == {"server": harness.url, "forgotten": True,
                                      "revoked": True}
    assert harness.url not in json.loads(saved.read_text())


def test_a_login_code_works_once_and_only_with_its_verifier(
        sealed_page: SealedPage, harness: AuthHarness) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    browser_sign_in(sealed_page, harness)
    request = sealed_page.page.request
    landing = request.get(f"{harness.url}/login/cli?port=40000&state={'s' * 20}"
                          f"&code_challenge={challenge}", max_redirects=0)
    assert landing.status == 302
    target = landing.headers["location"]
    assert target.startswith("http://127.0.0.1:40000/callback?")
    code = parse_qs(urlsplit(target).query)["code"][0]

    def exchange(body: Any) -> tuple[int, Any]:
        response = http.request("POST", harness.url + "/v1/login/exchange",
                                body=json.dumps(body).encode())
        return response.status, json.loads(response.data)

    assert exchange({"code": code, "code_verifier": "w" * 50})[0] == 401
    assert exchange({"code": code[:-2] + "xx", "code_verifier": verifier})[0] == 401
    status, made = exchange({"code": code, "code_verifier": verifier})
    assert status == 200
    assert made["subject"] == "company#alice"
    status, again = exchange({"code": code, "code_verifier": verifier})
    assert (status, again["error"]) == (401, "not_signed_in")
    assert "used already" in again["message"]


@pytest.mark.parametrize("query", [
    "port=80&state=ssssssssssssssssssss&code_challenge=" + "c" * 43,  # not a user port
    "port=40000&state=s&code_challenge=" + "c" * 43,  # state too short
    "port=40000&state=ssssssssssssssssssss&code_challenge=short",
    "port=40000@evil.example&state=ssssssssssssssssssss&code_challenge=" + "c" * 43,
])
def test_bad_cli_login_requests_go_nowhere(harness: AuthHarness, query: str) -> None:
    response = http.request("GET", f"{harness.url}/login/cli?{query}", redirect=False)
    assert response.status == 400


def test_an_anonymous_cli_login_goes_through_sign_in_first(harness: AuthHarness) -> None:
    query = "port=40000&state=ssssssssssssssssssss&code_challenge=" + "c" * 43
    response = http.request("GET", f"{harness.url}/login/cli?{query}", redirect=False)
    assert response.status == 302
    location = response.headers["location"]
    assert location.startswith("/signin?next=")
    assert safe_next(parse_qs(urlsplit(location).query)["next"][0]).startswith("/login/cli?")


def test_a_huge_exchange_body_is_refused(harness: AuthHarness) -> None:
    # one connection: after the 413 the server (uvicorn) reads the rest of the body and
    # drops it, so the connection is not reset under the answer and stays usable
    pool = urllib3.connectionpool.connection_from_url(harness.url, maxsize=1, block=True)
    try:
        response = pool.request("POST", "/v1/login/exchange",
                                body=b'{"code": "' + b"x" * 100_000 + b'"}')
        assert response.status == 413
        assert json.loads(response.data)["error"] == "too_large"
        assert pool.request("GET", "/me").status == 200  # answered on the same connection
        assert pool.num_connections == 1
    finally:
        pool.close()


def test_a_tampered_or_foreign_session_cookie_signs_nobody_in(
        sealed_page: SealedPage, harness: AuthHarness, oidc_issuer: OidcIssuer) -> None:
    browser_sign_in(sealed_page, harness)
    cookie = next(c for c in sealed_page.context.cookies() if c["name"] == SESSION_COOKIE)
    value = cookie["value"]

    def me(cookie_value: str, url: str = harness.url) -> Any:
        return json.loads(http.request("GET", url + "/me", headers={
            "Cookie": f"{SESSION_COOKIE}={cookie_value}"}).data)

    assert me(value)["subject"] == "company#alice"
    rest = value.partition(".")[2]
    forged = base64.b64encode(json.dumps({"user": {"subject": "company#root"}})
                              .encode()).decode()
    assert me(forged + "." + rest)["subject"] is None  # a payload the secret did not sign
    assert me(value[:-2] + ("AA" if not value.endswith("AA") else "BB"))["subject"] is None
    with auth_harness(oidc_issuer) as other:  # another server, another secret
        assert me(value, other.url)["subject"] is None


def test_github_sign_in_is_oauth2_with_no_scope(sealed_page: SealedPage,
                                                oidc_issuer: OidcIssuer) -> None:
    from artifactstore.testing.oidc import github_id

    with auth_harness(oidc_issuer, kind="github") as harness:
        harness.issuer.calls.clear()
        sealed_page.allow(oidc_issuer.url)
        seen: list[str] = []
        sealed_page.page.on("request", lambda r: seen.append(r.url))
        me = browser_sign_in(sealed_page, harness)
    assert me["subject"] == f"company#{github_id('alice')}"
    assert me["email"] == "alice@example.com"
    assert me["groups"] == []
    authorize = next(u for u in seen if "/login/oauth/authorize?" in u)
    assert "scope" not in parse_qs(urlsplit(authorize).query)  # identity only
    assert harness.issuer.calls["user"] == 1
    assert "discovery" not in harness.issuer.calls


def test_the_session_cookie_is_secure_behind_https() -> None:
    from artifactstore.server.signin import session_options

    base = ServerSettings(store_url="memory://x", secret=b"s" * 32)
    assert session_options(base)["https_only"] is False
    secure = ServerSettings(store_url="memory://x", secret=b"s" * 32,
                            public_url="https://artifacts.example.com")
    options = session_options(secure)
    assert (options["https_only"], options["same_site"]) == (True, "lax")


def test_serve_with_an_issuer_signs_the_cli_in(sealed_page: SealedPage,
                                               oidc_issuer: OidcIssuer, tmp_path: Path,
                                               cli_env: dict[str, str]) -> None:
    """``artifactstore serve --config server.toml`` (a real process) with an [[issuers]]
    entry: the CLI signs in through it and the token it saved works; the server's log
    holds neither the token nor the one-time codes."""
    from artifactstore.testing.teamserver import serve_process

    store = str(tmp_path / "store")
    assert subprocess.run([sys.executable, "-m", "artifactstore", "init", store, "--public",
                           "-q"], env=cli_env, check=False).returncode == 0
    client = oidc_issuer.add_client([])
    config = tmp_path / "server.toml"
    config.write_text(oidc_issuer.server_toml(client, 'everyone = "reader"'))
    log = tmp_path / "server.log"
    with serve_process(store, log, config=config,
                       env={"TEST_OIDC_SECRET": client.client_secret}) as server:
        oidc_issuer.allow_redirect(client.client_id, f"{server.url}/signin/company/callback")
        code, answer, err = cli_login(sealed_page, server.url, oidc_issuer.url, cli_env)
        assert code == 0, err
        who = subprocess.run([sys.executable, "-m", "artifactstore", "whoami", server.url,
                              "--json"], env=cli_env, capture_output=True, text=True,
                             check=False)
        assert json.loads(who.stdout)["email"] == "alice@example.com"
        listed = subprocess.run([sys.executable, "-m", "artifactstore", "token", "list",
                                 server.url, "--json"], env=cli_env, capture_output=True,
                                text=True, check=False)
        assert [t["id"] for t in json.loads(listed.stdout)["tokens"]] == [answer["token_id"]]
        text = server.log_text()
    token = json.loads((Path(cli_env["ARTIFACTSTORE_CONFIG_DIR"]) / "tokens.json")
                       .read_text())[server.url]["token"]
    assert "/v1/login/exchange" in text
    assert token not in text
    assert token.split("_", 2)[2] not in text
    assert "code=" not in text
