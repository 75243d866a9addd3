"""Roles end to end: a real team server (uvicorn on 127.0.0.1) over a local store, the
real CLI as five people, API tokens of the server's own token store, and the audit log.

The people, each with their own config folder (identity, saved token) and cache:

- alice, a server admin ([roles] admins), creates the projects and logs into them;
- bob, reader of ``vis`` (a private project: he holds a key slot, so only the server
  stands between him and writing);
- carol, writer of ``vis`` and ``pub`` (a member of both);
- eve, signed in, no role anywhere and no key;
- nobody: anonymous, no token.

``pub`` is public, ``vis`` private. Every refusal must be exit 14 (anonymous) or 15
(signed in) with ONE line on stderr, and leave the store as it was; every write that
reached the server must be in the audit log with its user.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3

from artifactstore.backends import open_backend
from artifactstore.backends.base import Backend
from artifactstore.backends.credentials import save_token, token_for
from artifactstore.cli import main
from artifactstore.local.identity import load_or_create_identity
from artifactstore.records.projects import ProjectKeys
from artifactstore.server.audit import AUDIT_PREFIX, StoreAuditTrail, audit_route, read_audit
from artifactstore.server.authn import ServerAuthenticator
from artifactstore.server.authz import KeyPolicy
from artifactstore.server.principal import Principal, Role
from artifactstore.server.roles import parse_roles
from artifactstore.server.settings import ServerSettings
from artifactstore.server.tokens import TokenStore
from artifactstore.testing.stores import init_quick_store
from artifactstore.testing.teamserver import TEST_SECRET, serving_team

ROLES = {
    "admins": ["alice@example.com"],
    "projects": {
        "vis": {"readers": ["bob@example.com"], "writers": ["carol@example.com"]},
        "pub": {"writers": ["carol@example.com"]},
    },
}
PEOPLE = {"alice": Principal("test#alice", email="alice@example.com"),
          "bob": Principal("test#bob", email="bob@example.com"),
          "carol": Principal("test#carol", email="carol@example.com"),
          "eve": Principal("test#eve", email="eve@example.com"),
          "dave": Principal("test#dave", email="dave@example.com")}  # whom the audit test adds


@dataclass
class Team:
    url: str  # http://127.0.0.1:PORT
    root: Path
    backend: Backend
    tokens: dict[str, str]
    become: Callable[[str], None]
    lines: dict[str, str]  # each person's public identity line

    @property
    def store(self) -> str:
        return f"artifactstore+{self.url}/"

    def data(self, name: str, text: str) -> str:
        folder = self.root / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "a.txt").write_text(text)
        return str(folder)

    def snapshot(self) -> dict[str, bytes]:
        """Every object of the backing store but the audit log."""
        return {k: self.backend.get(k) for k in self.backend.list("")
                if not k.startswith(AUDIT_PREFIX)}


@contextmanager
def _serving(backing: Backend, settings: ServerSettings, tokens: TokenStore) -> Iterator[str]:
    """The team server as ``artifactstore serve`` wires it (sign-in by token, KeyPolicy,
    the audit trail and its endpoint), by uvicorn in a thread; yields its URL."""
    policy = KeyPolicy(backing, parse_roles(settings.roles))
    authenticator = ServerAuthenticator(tokens)
    with serving_team(settings, backend=backing, authenticator=authenticator,
                      authorizer=policy, audit=StoreAuditTrail(backing), roles_of=policy.roles,
                      routes=[audit_route(authenticator, policy.server_admin, backing)]) as url:
        yield url


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    root = tmp_path_factory.mktemp("team")
    init_quick_store(str(root / "backing"))
    backing = open_backend(str(root / "backing"))
    settings = ServerSettings(store_url=str(root / "backing"), secret=TEST_SECRET,
                              roles=ROLES)
    token_store = TokenStore(backing, TEST_SECRET)
    tokens = {name: token_store.create(who, name=f"{name} laptop")[0]
              for name, who in PEOPLE.items()}
    with pytest.MonkeyPatch.context() as mp, _serving(backing, settings, token_store) as url:
        mp.delenv("ARTIFACTSTORE_TOKEN", raising=False)
        mp.delenv("ARTIFACTSTORE_URL", raising=False)
        mp.delenv("ARTIFACTSTORE_PASSPHRASE", raising=False)

        def become(name: str) -> None:
            mp.setenv("ARTIFACTSTORE_CONFIG_DIR", str(root / "people" / name))
            mp.setenv("ARTIFACTSTORE_CACHE_DIR", str(root / "cache" / name))

        lines = {}
        for name in (*PEOPLE, "nobody"):
            become(name)
            lines[name] = load_or_create_identity().public.to_line()
            if name in tokens:
                save_token(url, tokens[name])
        found = Team(url, root, backing, tokens, become, lines)
        # alice sets the team up through the server: two projects, a version in each
        become("alice")
        store = found.store
        for argv in (("project", "create", "pub", "--visibility", "public",
                      "--member", lines["carol"]),
                     ("project", "create", "vis", "--visibility", "private",
                      "--member", lines["bob"], "--member", lines["carol"]),
                     ("log", "ds", found.data("pub0", "public data\n"), "--project", "pub"),
                     ("log", "secret", found.data("vis0", "private data\n"),
                      "--project", "vis")):
            code, _, err = cli_quiet(*argv, "--store", store)
            assert code == 0, (argv, err)
        yield found
    backing.close()


def cli_quiet(*argv: str) -> tuple[int, str, str]:
    """``artifactstore *argv`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _refused(team: Team, code: int, *argv: str) -> str:
    """Run ``argv`` against the server; it must fail with ``code``, one line on stderr,
    and change nothing in the store (the audit log aside). Returns the line."""
    before = team.snapshot()
    found, _, err = cli_quiet(*argv, "--store", team.store)
    assert found == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert team.snapshot() == before
    return lines[0]


def _domains(team: Team, project: str) -> list[str]:
    return [k.hex() for k in ProjectKeys(team.backend, project, None).key_ids().values()]


# -- anonymous ------------------------------------------------------------------------------


def test_anonymous_reads_a_public_project_and_is_refused_a_private_one(team: Team) -> None:
    team.become("nobody")
    code, out, err = cli_quiet("ls", "--project", "pub", "--store", team.store)
    assert code == 0, err
    assert "ds" in out
    code, _, err = cli_quiet("get", "ds:v0", "--dir", str(team.root / "anon-get"),
                             "--project", "pub", "--store", team.store)
    assert code == 0, err
    assert (team.root / "anon-get" / "a.txt").read_text() == "public data\n"
    line = _refused(team, 14, "ls", "--project", "vis")
    assert "sign in" in line
    # the client refuses a non-member's log before any upload (exit 12); the server
    # refuses an anonymous write whatever the client is
    before = team.snapshot()
    pack = "ab" + "0" * 62
    for method, headers in (("PUT", {"If-None-Match": "*"}), ("PUT", {}), ("DELETE", {})):
        answer = urllib3.request(method, f"{team.url}/v1/o/objects/plain/packs/ab/{pack}",
                                 body=b"x" if method == "PUT" else None, headers=headers)
        assert answer.status == 401
        assert json.loads(answer.data)["error"] == "not_signed_in"
    assert team.snapshot() == before


# -- a reader -------------------------------------------------------------------------------


def test_a_readers_log_delete_and_purge_are_refused_with_one_line(team: Team) -> None:
    team.become("bob")
    code, out, err = cli_quiet("ls", "--project", "vis", "--store", team.store)
    assert code == 0, err
    assert "secret" in out
    line = _refused(team, 15, "log", "secret", team.data("bob", "bob's\n"), "--project", "vis")
    assert "bob@example.com (token" in line
    assert "is a reader of project vis" in line
    assert "needs writer" in line
    line = _refused(team, 15, "delete", "secret:v0", "--project", "vis")
    assert "needs admin" in line
    line = _refused(team, 15, "purge", "secret:v0", "--reason", "test", "--no-wait",
                    "--project", "vis")
    assert "needs admin" in line


# -- a writer -------------------------------------------------------------------------------


def _versions(team: Team, name: str, project: str) -> list[str]:
    code, out, err = cli_quiet("ls", name, "--project", project, "--json", "--store", team.store)
    assert code == 0, err
    return [v["ref"] for v in json.loads(out)["versions"]]


def test_a_writer_logs_and_its_purge_is_refused_with_nothing_changed(team: Team) -> None:
    team.become("carol")
    before = _versions(team, "secret", "vis")  # other tests of the module log it too
    code, out, err = cli_quiet("log", "secret", team.data("carol", "carol's\n"),
                               "--project", "vis", "--json", "--store", team.store)
    assert code == 0, err
    ref = json.loads(out)["ref"]
    assert _versions(team, "secret", "vis") == [*before, ref]
    line = _refused(team, 15, "purge", ref, "--reason", "test", "--no-wait",
                    "--project", "vis")
    assert "carol@example.com (token" in line
    assert "is a writer of project vis" in line
    assert "needs admin" in line
    # a version with an alias: the writer may move aliases, but its delete and purge
    # are refused before the alias is cleared (the client asks the server first)
    code, _, err = cli_quiet("alias", "set", ref, "candidate", "--project", "vis",
                             "--store", team.store)
    assert code == 0, err
    for argv in (("delete", ref), ("purge", ref, "--reason", "test", "--no-wait")):
        line = _refused(team, 15, *argv, "--project", "vis")
        assert "is a writer of project vis" in line
        assert "needs admin" in line
    code, out, err = cli_quiet("show", "secret:candidate", "--project", "vis", "--json",
                               "--store", team.store)
    assert code == 0, err
    assert json.loads(out)["ref"] == ref


def test_a_token_scoped_to_one_project_cannot_touch_another(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    team.become("carol")
    narrow, _ = TokenStore(team.backend, TEST_SECRET).create(
        PEOPLE["carol"], name="ci for pub", projects=["pub"], role=Role.WRITER,
        role_of=lambda who, project: Role.WRITER)
    monkeypatch.setenv("ARTIFACTSTORE_TOKEN", narrow)
    code, _, err = cli_quiet("log", "ds", team.data("carol-pub", "from ci\n"),
                             "--project", "pub", "--store", team.store)
    assert code == 0, err
    line = _refused(team, 15, "ls", "--project", "vis")
    assert "does not carry that role" in line


# -- a non-member ---------------------------------------------------------------------------


def test_a_non_member_cannot_read_a_private_projects_objects(team: Team) -> None:
    vis_keys = [k for d in _domains(team, "vis") for k in team.backend.list(f"objects/{d}/")]
    assert vis_keys
    http = urllib3.PoolManager()
    auth = {"Authorization": f"Bearer {team.tokens['eve']}"}
    for key in vis_keys[:3]:
        answer = http.request("GET", f"{team.url}/v1/o/{key}", headers=auth)
        assert answer.status == 403
        body = json.loads(answer.data)
        assert body["error"] == "not_authorized"
        assert "eve@example.com" in body["message"]
        assert answer.data.count(b"\n") == 0
        anonymous = http.request("GET", f"{team.url}/v1/o/{key}")
        assert anonymous.status == 401
    answer = http.request("GET", f"{team.url}/v1/list?prefix=objects/", headers=auth)
    assert answer.status == 200
    assert not set(json.loads(answer.data)["keys"]) & set(vis_keys)
    answer = http.request("GET", f"{team.url}/v1/list?prefix=projects/", headers=auth)
    assert not [k for k in json.loads(answer.data)["keys"] if k.startswith("projects/vis/")]
    team.become("eve")
    line = _refused(team, 15, "ls", "--project", "vis")
    assert "eve@example.com (token" in line


# -- the audit log --------------------------------------------------------------------------


def test_every_write_and_delete_is_in_the_audit_log_with_its_user(team: Team) -> None:
    team.become("carol")  # a writer cannot change who is a member
    line = _refused(team, 15, "project", "members", "add", team.lines["dave"], "--project", "vis")
    assert "needs admin" in line
    # nor write a tombstone: the CLI asks first (above), the server refuses it anyway
    token = token_for(team.url)
    tomb = urllib3.request("PUT", f"{team.url}/v1/o/projects/vis/lifecycle/0000009999",
                           body=b"x", headers={"If-None-Match": "*",
                                               "Authorization": f"Bearer {token}"})
    assert tomb.status == 403
    # and what a writer may do, here (under xdist, the tests before this one may have run
    # on another worker, with another module fixture)
    code, _, err = cli_quiet("log", "ds", team.data("carol-audit", "carol's public data\n"),
                             "--project", "pub", "--store", team.store)
    assert code == 0, err
    team.become("alice")  # an admin can; and an admin's purge: lifecycle, the gc lock,
    # condemnations, deletes (of a version of its own: the other tests read ds:v0, and
    # eve stays a non-member)
    code, _, err = cli_quiet("project", "members", "add", team.lines["dave"], "--project", "vis",
                             "--store", team.store)
    assert code == 0, err
    code, out, err = cli_quiet("log", "ds", team.data("pub1", "more public\n"),
                               "--project", "pub", "--json", "--store", team.store)
    assert code == 0, err
    code, _, err = cli_quiet("purge", json.loads(out)["ref"], "--reason", "takedown",
                             "--no-wait", "--project", "pub", "--store", team.store)
    assert code == 0, err
    entries = read_audit(team.backend)
    done = [e for e in entries if 200 <= e.status < 300]
    assert {e.action for e in done} == {"create", "put", "delete"}
    # every object of the store was written through the server, and recorded (config and
    # the token records aside: made before the server started, without it)
    written = {e.key for e in done if e.action != "delete"}
    stored = {k for k in team.snapshot() if k != "config" and not k.startswith("server/")}
    assert stored <= written
    deleted = {e.key for e in done if e.action == "delete"}
    assert deleted
    assert not deleted & set(team.snapshot())
    users = {e.user.partition(" (token")[0] for e in done}
    assert users == {"alice@example.com", "carol@example.com"}
    refused = [e for e in entries if e.status in (401, 403)]
    assert {e.user.partition(" (token")[0] for e in refused} >= {"carol@example.com"}
    assert any(e.kind == "lifecycle" and e.status == 403 for e in refused)
    assert [e for e in entries if e.kind == "project" and e.status == 201]
    joined = [e for e in entries if e.kind == "membership"]
    assert [(e.user.partition(" (token")[0], e.status) for e in joined] == [
        ("alice@example.com", 201)]
    # carol's attempt stopped at its first write, dave's key slot (written before the event)
    slots = [(e.user.partition(" (token")[0], e.status) for e in entries if e.kind == "keys"]
    assert ("carol@example.com", 403) in slots
    assert ("alice@example.com", 201) in slots
    # a private project's names and contents never reach the log (its keys hold tags)
    raw = b"".join(team.backend.get(AUDIT_PREFIX + e.name) for e in entries)
    assert b"secret" not in raw
    assert b"private data" not in raw
    assert b"ast1_" not in raw  # nor a token
    # the CLI reads it for a server admin, and for nobody else
    code, out, err = cli_quiet("server-audit", team.url, "--json")
    assert code == 0, err
    assert len(json.loads(out)["entries"]) >= len(entries)
    code, out, err = cli_quiet("server-audit", team.url, "--since", "1h")
    assert code == 0, err
    assert [line for line in out.splitlines()
            if "alice@example.com (token" in line and " create  201  membership  "
            "projects/vis/members/" in line]
    team.become("bob")
    line = _refused(team, 15, "server-audit", team.url)
    assert "not a server admin" in line
    team.become("nobody")
    _refused(team, 14, "server-audit", team.url)


def test_the_audit_endpoint_refuses_bad_queries_and_narrow_tokens(team: Team) -> None:
    http = urllib3.PoolManager()
    auth = {"Authorization": f"Bearer {team.tokens['alice']}"}
    answer = http.request("GET", f"{team.url}/v1/audit?limit=2", headers=auth)
    assert answer.status == 200
    page = json.loads(answer.data)
    assert len(page["entries"]) == 2
    following = http.request("GET", f"{team.url}/v1/audit?limit=2&after={page['next']}",
                             headers=auth)
    assert json.loads(following.data)["entries"][0]["name"] > page["next"]
    for query in ("since=yesterday", "limit=0", "limit=100000", "until=inf", "since=-1"):
        answer = http.request("GET", f"{team.url}/v1/audit?{query}", headers=auth)
        assert answer.status == 400, query
        assert json.loads(answer.data)["error"] == "bad_request"
    store = TokenStore(team.backend, TEST_SECRET)
    narrow, _ = store.create(PEOPLE["alice"], name="ci", projects=["pub"],
                             role=Role.ADMIN, role_of=lambda who, project: Role.ADMIN)
    answer = http.request("GET", f"{team.url}/v1/audit",
                          headers={"Authorization": f"Bearer {narrow}"})
    assert answer.status == 403
    forged = team.tokens["alice"][:-4] + "AAAA"
    answer = http.request("GET", f"{team.url}/v1/audit",
                          headers={"Authorization": f"Bearer {forged}"})
    assert answer.status == 401


def test_a_writer_declares_its_name_through_the_server_and_a_reader_cannot(
        team: Team) -> None:
    team.become("carol")
    code, _, err = cli_quiet("identity", "declare", "--name", "Carol", "--email",
                             "carol@example.com")
    assert code == 0, err
    code, _, err = cli_quiet("log", "secret", team.data("carol-p", "carol again\n"),
                             "--project", "vis", "--store", team.store)
    assert code == 0, err
    team.become("bob")  # a reader holds a key slot, so only the server refuses his write
    assert cli_quiet("identity", "declare", "--name", "Bob")[0] == 0
    _refused(team, 15, "log", "secret", team.data("bob-p", "bob's\n"), "--project", "vis")
    team.become("alice")
    code, out, err = cli_quiet("project", "show", "vis", "--json", "--store", team.store)
    assert code == 0, err
    profiles = json.loads(out)["profiles"]
    carol = ProjectKeys(team.backend, "vis", None).members()[2].fingerprint
    assert list(profiles) == [carol]
    assert (profiles[carol]["name"], profiles[carol]["email"]) == ("Carol", "carol@example.com")


# -- what only an admin may do ----------------------------------------------------------------


ADMIN_ONLY = [("delete", "secret:v0"), ("delete", "--artifact", "secret"),
              ("delete", "--whole-project"),
              ("purge", "secret:v0", "--reason", "test", "--no-wait"),
              ("restore", "scratch:v0"), ("restore", "--artifact", "scratch"),
              ("restore", "--whole-project"), ("retention", "30d"), ("gc", "--grace", "0")]
DOING = {"delete": "deleting versions", "purge": "purging versions",
         "restore": "restoring versions", "retention": "setting a retention",
         "gc": "collecting garbage"}


@pytest.mark.parametrize("person", ["bob", "carol"])
def test_every_admin_command_of_a_reader_or_writer_is_refused_before_any_write(
        team: Team, person: str) -> None:
    """A reader's and a writer's first write in a project would declare their profile;
    an admin-only command is refused first: one line naming what it needed, and nothing
    written, not even the profile (a reader's refusal once said "writing member profiles
    needs writer" for a delete)."""
    team.become("alice")  # a deleted version to restore
    code, out, err = cli_quiet("log", "scratch", team.data(f"scratch-{person}", "gone\n"),
                               "--project", "vis", "--json", "--store", team.store)
    assert code == 0, err
    code, _, err = cli_quiet("delete", json.loads(out)["ref"], "--project", "vis",
                             "--store", team.store)
    assert code == 0, err
    team.become(person)
    code, _, err = cli_quiet("identity", "declare", "--name", f"{person} {uuid.uuid4().hex}")
    assert code == 0, err  # a new profile, not yet in the project
    for argv in ADMIN_ONLY:
        line = _refused(team, 15, *argv, "--project", "vis")
        assert f"{person}@example.com (token" in line, argv
        assert line.endswith(f"; {DOING[argv[0]]} needs admin"), (argv, line)
