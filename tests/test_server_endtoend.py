"""The team server with sign-in, end to end: a real OIDC issuer (authlib), the server
app on uvicorn, headless Chromium and the CLI in real processes (issue 18's
acceptance: sign in through the browser to the runs table; ``artifactstore login``
then ``log`` and ``get`` through ``artifactstore+http://``; forged, tampered,
expired and revoked tokens exit 14; a token scoped to one project exits 15 on
another)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

import artifactstore
from artifactstore.cli import main
from artifactstore.server.principal import Principal, Role
from artifactstore.testing.authharness import Team, team_server

# the roles come from ROLES's authorizer and audit trail (server/authz.py, audit.py),
# merged into main separately: until then these tests cannot assemble the server
authz = pytest.importorskip("artifactstore.server.authz",
                            reason="needs the ROLES helper's server/authz.py (KeyPolicy)")
audit = pytest.importorskip("artifactstore.server.audit",
                            reason="needs the ROLES helper's server/audit.py")

if TYPE_CHECKING:
    from artifactstore.testing.browser import SealedPage
    from artifactstore.testing.oidc import OidcIssuer

ALICE = Principal(subject="company#alice", email="alice@example.com", name="Alice Liddell",
                  groups=frozenset({"ml-team"}))
ROLES = {"public_read": False, "projects": {
    "vision": {"writers": ["alice@example.com"]},
    "audio": {"writers": ["alice@example.com"]},
    "secret": {"writers": ["alice@example.com"]}}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store of two public projects, vision (two runs) and audio (one), and a private
    one, secret (one run), made by the identity under ``<root>/config``."""
    root = tmp_path_factory.mktemp("team")
    url = str(root / "store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTIFACTSTORE_CONFIG_DIR", str(root / "config"))
        assert main(["init", url, "--public", "-q"]) == 0
        for project, runs in (("vision", 2), ("audio", 1)):
            with artifactstore.open(url, project) as store:
                for i in range(runs):
                    with store.run(name=f"{project}-{i}", job_type="train") as run:
                        for step in range(5):
                            run.log({"loss": 1 / (step + 1)})
        # a private project: encrypted for its members; the server holds no identity
        assert main(["project", "create", "secret", "--visibility", "private", "--store",
                     url, "-q"]) == 0
        with artifactstore.open(url, "secret") as store, \
                store.run(name="classified-run", job_type="train") as run:
            run.log({"loss": 0.5})
    return url


@pytest.fixture
def team(oidc_issuer: OidcIssuer, folder: str) -> Iterator[Team]:
    oidc_issuer.add_user("bob", "bob@example.com", "Bob")
    with team_server(oidc_issuer, folder, ROLES, authorizer=authz.KeyPolicy.from_settings,
                     audit=audit.StoreAuditTrail) as found:
        yield found


def sign_in(page: SealedPage, team: Team, path: str) -> None:
    """Open ``path`` anonymously, get sent to sign-in, sign in, land back on ``path``."""
    page.allow(team.issuer.url)
    page.open(team.url + path)
    assert urlsplit(page.page.url).path == "/signin"
    page.click("a")
    page.wait_for(f"() => location.pathname === {json.dumps(path)}")


def test_a_browser_signs_in_and_reaches_the_runs_table(
        sealed_page: SealedPage, team: Team, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="artifactstore.server.access")
    sign_in(sealed_page, team, "/p/vision/")
    sealed_page.wait_ready()
    names = sealed_page.evaluate(
        "() => [...document.querySelectorAll('#runs tbody tr')].map(r => r.innerText)")
    assert len(names) == 2
    assert any("vision-1" in n for n in names)
    listed = sealed_page.page.request.get(team.url + "/api/projects").json()
    assert {p["project"] for p in listed["projects"]} == {"vision", "audio", "secret"}
    who = sealed_page.page.request.get(team.url + "/v1/whoami").json()
    assert (who["email"], who["roles"].get("vision")) == ("alice@example.com", "writer")
    # the access log names the callback, never its one-time code or the session cookie
    lines = [r.getMessage() for r in caplog.records if r.name == "artifactstore.server.access"]
    assert any("/signin/company/callback" in line for line in lines)
    cookie = next(c["value"] for c in sealed_page.context.cookies()
                  if c["name"] == "artifactstore_session")
    assert not [line for line in lines if "code=" in line or cookie in line]
    # the pages name the user and sign out with a POST from this origin
    sealed_page.open(team.url + "/p/vision/")
    assert sealed_page.text(".signout .user") == "alice@example.com"
    sealed_page.click(".signout button")
    sealed_page.wait_for("() => location.pathname === '/signin'")
    assert sealed_page.page.request.get(team.url + "/v1/whoami").json()["user"] is None


def test_a_private_project_is_locked_without_a_server_identity(
        sealed_page: SealedPage, team: Team) -> None:
    sign_in(sealed_page, team, "/p/secret/")
    body = sealed_page.page.inner_text("body")
    assert "classified-run" not in body
    api = sealed_page.page.request.get(team.url + "/api/p/secret/")
    assert api.status == 403
    assert "classified-run" not in api.text()


def test_signed_in_without_a_role_is_a_403_page(sealed_page: SealedPage,
                                                team: Team) -> None:
    team.issuer.sign_in_as("bob")
    sealed_page.allow(team.issuer.url)
    sealed_page.open(team.url + "/p/vision/")
    sealed_page.click("a")
    sealed_page.wait_for("() => document.readyState === 'complete' && "
                         "location.pathname === '/p/vision/'")
    body = sealed_page.page.inner_text("body")
    assert "Not allowed" in body
    assert "vision-0" not in body
    assert sealed_page.page.request.get(team.url + "/api/p/vision/").status == 403
    assert sealed_page.page.request.get(team.url + "/api/projects").json()["projects"] == []


def test_another_site_cannot_write_with_the_session(sealed_page: SealedPage,
                                                   team: Team) -> None:
    sign_in(sealed_page, team, "/p/vision/")
    request = sealed_page.page.request
    key = "/v1/o/projects/vision/runs/planted"
    refused = request.put(team.url + key, data=b"x", headers={"Origin": "http://evil.example"})
    assert refused.status == 403
    assert refused.json()["error"] == "not_authorized"
    bare = request.delete(team.url + key)  # no Origin, no Sec-Fetch-Site: not trusted
    assert bare.status == 403
    # reads with the session are fine (GET is not a change)
    assert request.get(team.url + "/v1/list?prefix=projects/vision/").status == 200


def test_anonymous_gets_the_sign_in_redirect_and_no_data(team: Team) -> None:
    import urllib3

    for path in ("/p/vision/", "/p/audio/runs/x", "/p/nosuch/"):
        response = urllib3.request("GET", team.url + path, redirect=False)
        assert response.status == 302, path
        assert response.headers["location"].startswith("/signin?next=")
    api = urllib3.request("GET", team.url + "/api/p/vision/", redirect=False)
    assert api.status == 401
    assert json.loads(api.data)["error"] == "not_signed_in"
    assert urllib3.request("GET", team.url + "/healthz").status == 200


# -- the CLI through the server --------------------------------------------------------


def run_cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "artifactstore", *argv], env=env,
                          capture_output=True, text=True, timeout=180, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def cli_env(tmp_path: Path, folder: str) -> dict[str, str]:
    """The environment of a user who is a member of the projects (the identity that
    made them: records are signed) and has no token yet."""
    shutil.copytree(Path(folder).parent / "config", tmp_path / "config")
    env = dict(os.environ)
    env["ARTIFACTSTORE_CONFIG_DIR"] = str(tmp_path / "config")
    env["ARTIFACTSTORE_CACHE_DIR"] = str(tmp_path / "cache")
    env.pop("ARTIFACTSTORE_TOKEN", None)
    return env


def cli_login(page: SealedPage, team: Team, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "artifactstore", "login", team.url, "--no-browser", "--json",
         "--timeout", "60"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    assert proc.stderr is not None
    url = ""
    for line in proc.stderr:
        if line.startswith(team.url + "/login/cli?"):
            url = line.strip()
            break
    page.allow(team.issuer.url)
    page.allow(f"http://127.0.0.1:{parse_qs(urlsplit(url).query)['port'][0]}")
    page.open(url)
    if urlsplit(page.page.url).path == "/signin":
        page.click("a")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


def test_the_cli_logs_in_then_logs_and_gets_through_the_server(
        sealed_page: SealedPage, team: Team, cli_env: dict[str, str],
        tmp_path: Path) -> None:
    assert cli_login(sealed_page, team, cli_env)["subject"] == "company#alice"
    data = tmp_path / "data"
    data.mkdir()
    (data / "weights.bin").write_bytes(os.urandom(300_000))
    (data / "notes.txt").write_text("through the server\n")
    logged = run_cli(cli_env, "log", "ds", str(data), "--store", team.store_url,
                     "--project", "vision", "--json")
    assert logged.returncode == 0, logged.stderr
    got = run_cli(cli_env, "get", "ds:v0", "--dir", str(tmp_path / "out"), "--store",
                  team.store_url, "--project", "vision", "--json")
    assert got.returncode == 0, got.stderr
    for name in ("weights.bin", "notes.txt"):
        assert (tmp_path / "out" / name).read_bytes() == (data / name).read_bytes()
    who = run_cli(cli_env, "whoami", team.url, "--json")
    assert json.loads(who.stdout)["roles"]["vision"] == "writer"
    # anonymous (no token): refused with exit 14
    anonymous = dict(cli_env, ARTIFACTSTORE_CONFIG_DIR=str(tmp_path / "nobody"))
    refused = run_cli(anonymous, "ls", "ds", "--store", team.store_url, "--project",
                      "vision")
    assert refused.returncode == 14, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["forged", "tampered", "expired", "revoked", "garbage"])
def test_bad_tokens_exit_14(team: Team, cli_env: dict[str, str], kind: str) -> None:
    import secrets as pysecrets

    from artifactstore.server.tokens import TokenStore

    token, record = team.tokens.create(ALICE, name=kind, days=1)
    if kind == "forged":  # a real id with a made-up secret
        token = f"ast1_{record.id}_{pysecrets.token_urlsafe(32)}"
    elif kind == "tampered":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif kind == "expired":
        later = TokenStore(team.tokens.backend, team.settings.secret,
                           clock=lambda: record.created - 2 * 86400)
        token, record = later.create(ALICE, name="old", days=1)
    elif kind == "revoked":
        team.tokens.revoke(record.id, ALICE)
    else:
        token = "ast1_garbage"
    env = dict(cli_env, ARTIFACTSTORE_TOKEN=token)
    done = run_cli(env, "ls", "--store", team.store_url, "--project", "vision")
    assert done.returncode == 14, done.stderr
    assert done.stderr.count("\n") == 1
    assert token not in done.stderr


def test_a_token_scoped_to_one_project_exits_15_on_another(
        team: Team, cli_env: dict[str, str], tmp_path: Path) -> None:
    token, _ = team.tokens.create(ALICE, name="ci", projects=["vision"], role=Role.WRITER,
                                  role_of=lambda p, project: Role.WRITER)
    env = dict(cli_env, ARTIFACTSTORE_TOKEN=token)
    (tmp_path / "f.txt").write_text("x\n")
    ok = run_cli(env, "runs", "ls", "--store", team.store_url, "--project", "vision")
    assert ok.returncode == 0, ok.stderr
    other = run_cli(env, "runs", "ls", "--store", team.store_url, "--project", "audio")
    assert other.returncode == 15, other.stderr
    write = run_cli(env, "log", "ds", str(tmp_path / "f.txt"), "--store", team.store_url,
                    "--project", "audio")
    assert write.returncode == 15, write.stderr
    reader, _ = team.tokens.create(ALICE, name="ro", projects=["vision"], role=Role.READER,
                                   role_of=lambda p, project: Role.WRITER)
    refused = run_cli(dict(cli_env, ARTIFACTSTORE_TOKEN=reader), "log", "ds",
                      str(tmp_path / "f.txt"), "--store", team.store_url, "--project",
                      "vision")
    assert refused.returncode == 15, refused.stderr


def test_a_server_admin_lists_and_revokes_everyones_tokens(
        oidc_issuer: OidcIssuer, folder: str, cli_env: dict[str, str]) -> None:
    roles = {**ROLES, "admins": ["bob@example.com"]}
    bob = Principal(subject="company#bob", email="bob@example.com")
    with team_server(oidc_issuer, folder, roles, authorizer=authz.KeyPolicy.from_settings,
                     audit=audit.StoreAuditTrail) as team:
        alices, record = team.tokens.create(ALICE, name="alice-ci")
        bobs, _ = team.tokens.create(bob, name="bob-cli")
        as_alice = dict(cli_env, ARTIFACTSTORE_TOKEN=alices)
        as_bob = dict(cli_env, ARTIFACTSTORE_TOKEN=bobs)
        mine = json.loads(run_cli(as_alice, "token", "list", team.url, "--all", "--json")
                          .stdout)
        # (the module's store keeps the tokens of the tests before: compare by owner)
        assert {t["subject"] for t in mine["tokens"]} == {ALICE.subject}  # --all: admins
        assert "alice-ci" in {t["name"] for t in mine["tokens"]}
        everyone = json.loads(run_cli(as_bob, "token", "list", team.url, "--all",
                                      "--json").stdout)
        assert {t["name"] for t in everyone["tokens"]} >= {"alice-ci", "bob-cli"}
        assert run_cli(as_alice, "token", "revoke", team.url, "0" * 16).returncode == 3
        done = run_cli(as_bob, "token", "revoke", team.url, record.id)
        assert done.returncode == 0, done.stderr
        refused = run_cli(as_alice, "whoami", team.url)
        assert refused.returncode == 14, refused.stderr


def test_serve_with_issuers_and_a_roles_table(sealed_page: SealedPage,
                                              oidc_issuer: OidcIssuer, folder: str,
                                              cli_env: dict[str, str],
                                              tmp_path: Path) -> None:
    """``artifactstore serve --config`` with [[issuers]] and [roles] (no open role): the
    server decides by the table (server/authz.py) and keeps the audit log."""
    from artifactstore.testing.teamserver import serve_process

    client = oidc_issuer.add_client([])
    config = tmp_path / "server.toml"
    config.write_text(oidc_issuer.server_toml(
        client, 'admins = ["alice@example.com"]\npublic_read = false'))
    with serve_process(folder, tmp_path / "server.log", config=config,
                       env={"TEST_OIDC_SECRET": client.client_secret}) as server:
        oidc_issuer.allow_redirect(client.client_id, f"{server.url}/signin/company/callback")
        team = Team(server.url, oidc_issuer, None, None)
        cli_login(sealed_page, team, cli_env)
        who = json.loads(run_cli(cli_env, "whoami", server.url, "--json").stdout)
        assert who["roles"].get("vision") == "admin"
        anonymous = dict(cli_env, ARTIFACTSTORE_CONFIG_DIR=str(tmp_path / "nobody"))
        refused = run_cli(anonymous, "runs", "ls", "--store", server.store_url,
                          "--project", "vision")
        assert refused.returncode == 14, refused.stderr
        (tmp_path / "f.txt").write_text("audited\n")
        logged = run_cli(cli_env, "log", "ds2", str(tmp_path / "f.txt"), "--store",
                         server.store_url, "--project", "vision")
        assert logged.returncode == 0, logged.stderr
        trail = run_cli(cli_env, "server-audit", server.url, "--json")
        assert trail.returncode == 0, trail.stderr
        assert "alice@example.com" in trail.stdout


def test_a_server_identity_that_is_a_member_shows_a_private_project(
        sealed_page: SealedPage, oidc_issuer: OidcIssuer, folder: str,
        cli_env: dict[str, str], tmp_path: Path) -> None:
    """``server_identity`` in server.toml: a team adds the server's identity as a member
    of a private project, and the server's web UI then shows that project (decrypted
    in the server process: the trade-off docs/server.md states); others stay locked."""
    from artifactstore.backends.credentials import token_for
    from artifactstore.testing.teamserver import serve_process

    folder = str(shutil.copytree(folder, tmp_path / "store"))  # the module's store stays as is
    server_id = dict(cli_env, ARTIFACTSTORE_CONFIG_DIR=str(tmp_path / "server-identity"))
    made = run_cli(server_id, "identity", "create", "--name", "team-server", "--no-passphrase",
                   "--json")
    assert made.returncode == 0, made.stderr
    line = json.loads(made.stdout)["public"].strip()
    for argv in (["project", "create", "shared", "--visibility", "private"],
                 ["project", "members", "add", line, "--project", "shared"]):
        done = run_cli(cli_env, *argv, "--store", folder)
        assert done.returncode == 0, done.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTIFACTSTORE_CONFIG_DIR", cli_env["ARTIFACTSTORE_CONFIG_DIR"])
        with artifactstore.open(folder, "shared", cache_dir=tmp_path / "c") as store, \
                store.run(name="shared-run", job_type="train") as run:
            run.log({"loss": 0.25})

    client = oidc_issuer.add_client([])
    config = tmp_path / "server.toml"
    config.write_text(oidc_issuer.server_toml(
        client, 'admins = ["alice@example.com"]\npublic_read = false',
        head=f'server_identity = "{tmp_path / "server-identity"}"'))
    with serve_process(folder, tmp_path / "server.log", config=config,
                       env={"TEST_OIDC_SECRET": client.client_secret}) as server:
        oidc_issuer.allow_redirect(client.client_id, f"{server.url}/signin/company/callback")
        cli_login(sealed_page, Team(server.url, oidc_issuer, None, None), cli_env)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ARTIFACTSTORE_CONFIG_DIR", cli_env["ARTIFACTSTORE_CONFIG_DIR"])
            token = token_for(server.url)
        import urllib3

        bearer = {"Authorization": f"Bearer {token}"}
        shown = urllib3.request("GET", f"{server.url}/api/p/shared/", headers=bearer)
        assert shown.status == 200
        assert "shared-run" in shown.data.decode()
        locked = urllib3.request("GET", f"{server.url}/api/p/secret/", headers=bearer)
        assert locked.status == 403  # the server is no member of that one
        assert "classified-run" not in locked.data.decode()
