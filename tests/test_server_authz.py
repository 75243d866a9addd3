"""The team server's key policy (server/keyrules.py, server/authz.py, server/roles.py).

Two halves. The pure table: every key shape of docs/design.md §1 and the role each
action on it needs, and a Hypothesis search over key-like strings (path tricks
included) showing that no key outside the written table is ever writable. Then
:class:`KeyPolicy` over a real store (memory backend) holding a public project and a
private one with two key epochs, created by the library's own project code, asked by
anonymous, readers, writers, admins, non-members and scoped tokens.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactstore.backends import open_backend
from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.backends.base import Backend
from artifactstore.core.crypto import SigningKey, generate_key, x25519_public
from artifactstore.core.errors import (
    ConfigurationError,
    InvalidInputError,
    NotAuthorizedError,
    NotSignedInError,
)
from artifactstore.objects.envelope import Kind
from artifactstore.records.codec import RecordCodec
from artifactstore.records.projects import Member, ProjectKeys
from artifactstore.server.authz import KeyPolicy, ProjectDirectory
from artifactstore.server.gate import Action
from artifactstore.server.keyrules import classify, classify_prefix, needed
from artifactstore.server.principal import ANONYMOUS, Principal, Role, TokenScope
from artifactstore.server.roles import parse_roles

R, W, A = Role.READER, Role.WRITER, Role.ADMIN
C, P, D, G, L = Action.CREATE, Action.PUT, Action.DELETE, Action.READ, Action.LIST
PACK = "ab" + "c" * 62
RUN = "20261206T204500123456Z-0badf00d"
DOM = "0123456789abcdef" * 2

# -- the pure table ------------------------------------------------------------------------

#: key -> (read, create, put, delete) as (role, over) or None (never)
TABLE = {
    "config": ((R, "anywhere"), (A, "server"), None, (A, "server")),
    "gc/lock": ((W, "anywhere"), (A, "anywhere"), (A, "anywhere"), (A, "anywhere")),
    f"objects/plain/packs/ab/{PACK}": ((R, "domain"), (W, "domain"), (W, "domain"),
                                       (A, "domain")),
    f"objects/{DOM}/index/{PACK}": ((R, "domain"), (W, "domain"), (W, "domain"),
                                    (A, "domain")),
    f"gc/{DOM}/condemned/001765000000000-0123456789abcdef": (
        (W, "domain"), (A, "domain"), (A, "domain"), (A, "domain")),
    "projects/vis/project": ((R, "project"), (A, "project"), None, (A, "project")),
    "projects/vis/members/0000000003": ((R, "project"), (A, "project"), None, (A, "project")),
    "projects/vis/recovery": ((R, "project"), (A, "project"), None, (A, "project")),
    "projects/vis/keys/0000000001/info": ((R, "project"), (A, "project"), None,
                                          (A, "project")),
    f"projects/vis/keys/0000000001/slots/{DOM}": ((R, "project"), (A, "project"), None,
                                                  (A, "project")),
    "projects/vis/artifacts/ds/versions/0000000000": (
        (R, "project"), (W, "project"), (A, "project"), (A, "project")),
    f"projects/vis/artifacts/n-{DOM}/aliases/n-{DOM}/0000000002": (
        (R, "project"), (W, "project"), (A, "project"), (A, "project")),
    f"projects/vis/runs/{RUN}/start": ((R, "project"), (W, "project"), (A, "project"),
                                       (A, "project")),
    f"projects/vis/runs/{RUN}/events/0000000000": ((R, "project"), (W, "project"),
                                                   (A, "project"), (A, "project")),
    f"projects/vis/runs/{RUN}/metrics/0000000007": ((R, "project"), (W, "project"),
                                                    (A, "project"), (A, "project")),
    f"projects/vis/runs/{RUN}/heartbeat": ((R, "project"), (W, "project"), (W, "project"),
                                           (A, "project")),
    "projects/vis/lifecycle/0000000000": ((R, "project"), (A, "project"), (A, "project"),
                                          (A, "project")),
    "projects/vis/journal-head": ((R, "project"), (W, "project"), (W, "project"),
                                  (A, "project")),
    # shapes outside the format: never written
    "projects/vis/locks/x": ((R, "project"), None, None, (A, "project")),
    "projects/vis/artifacts/ds/versions/12": ((R, "project"), None, None, (A, "project")),
    f"objects/plain/packs/cd/{PACK}": ((R, "domain"), None, None, (A, "domain")),
    "objects/plain/other": ((R, "domain"), None, None, (A, "domain")),
    "locks/x": ((A, "server"), None, None, (A, "server")),
    "objects/PLAIN/packs/x": ((A, "server"), None, None, (A, "server")),
    "server/audit/001-x": (None, None, None, None),
    "server/tokens/t1": (None, None, None, None),
    "server": (None, None, None, None),
}


@pytest.mark.parametrize("key", sorted(TABLE))
def test_every_key_shape_needs_the_documented_role(key: str) -> None:
    target = classify(key)
    found = []
    for action in (G, C, P, D):
        need = needed(target, action)
        found.append(None if need is None else (need.role, need.over))
    assert tuple(found) == TABLE[key]
    assert needed(target, L) == needed(target, G)


@pytest.mark.parametrize("key", ["../config", "projects/../config", "projects//vis/project",
                                 "/config", "projects/vis/./project", "a\\b", "x\x00",
                                 "projects/vis/project/", ""])
def test_path_tricks_are_invalid_and_allow_nothing(key: str) -> None:
    target = classify(key)
    assert target.kind == "invalid"
    assert all(needed(target, action) is None for action in Action)


# The independent oracle: design §1's written table, as the test reads it.
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_WRITABLE = [re.compile(p) for p in (
    r"config", r"gc/lock", r"gc/(plain|[0-9a-f]{32})/condemned/[0-9]{15}-[0-9a-f]+",
    r"objects/(plain|[0-9a-f]{32})/packs/([0-9a-f]{2})\2[0-9a-f]{62}",
    r"objects/(plain|[0-9a-f]{32})/index/[0-9a-f]{64}",
    rf"projects/{_NAME}/(project|recovery|members/[0-9]{{10}}|keys/[0-9]{{10}}/info"
    rf"|keys/[0-9]{{10}}/slots/[0-9a-f]{{32}}|artifacts/{_NAME}/versions/[0-9]{{10}}"
    rf"|artifacts/{_NAME}/aliases/{_NAME}/[0-9]{{10}}|lifecycle/[0-9]{{10}}|journal-head"
    r"|runs/[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}/(start|heartbeat|events/[0-9]{10}"
    r"|metrics/[0-9]{10}))")]

_SEGMENTS = st.sampled_from([
    "projects", "objects", "gc", "server", "config", "lock", "vis", "plain", DOM, "packs",
    "index", "ab", PACK, "artifacts", "versions", "aliases", "runs", RUN, "start",
    "heartbeat", "events", "metrics", "lifecycle", "journal-head", "members", "keys", "slots",
    "info",
    "project", "recovery", "condemned", "0000000001", "001765000000000-0123456789abcdef",
    "..", ".", "", "%2e%2e", "%2f", "ds\n", "\uff56is", "\u0660" * 9 + "\u0661", "-x", "a b", "ds"])


@st.composite
def key_like(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(_SEGMENTS, st.text(max_size=6)), min_size=1,
                          max_size=9))
    key = "/".join(parts)
    if draw(st.booleans()):
        key = draw(st.sampled_from(["/", "//", ""])) + key + draw(st.sampled_from(["", "/"]))
    return key


@settings(max_examples=2000, deadline=None)
@given(key_like())
def test_no_key_outside_the_table_is_ever_writable(key: str) -> None:
    target = classify(key)
    writable = needed(target, C) is not None or needed(target, P) is not None
    assert writable == any(p.fullmatch(key) for p in _WRITABLE), key
    if target.kind in ("invalid", "server"):
        assert all(needed(target, a) is None for a in Action)
    if needed(target, P) is not None:
        assert needed(target, C) is not None  # nothing is overwritable that is not creatable


@settings(max_examples=500, deadline=None)
@given(key_like())
def test_a_listing_prefix_never_opens_the_servers_keys(prefix: str) -> None:
    target = classify_prefix(prefix)
    if prefix.startswith("server/"):
        assert needed(target, L) is None
    if target.kind == "project":
        assert prefix.startswith(f"projects/{target.project}/")


# -- the roles table -----------------------------------------------------------------------


def test_roles_table_parses_and_matches_by_email_group_and_subject() -> None:
    table = parse_roles({
        "admins": ["Alice@Example.com"], "signed_in": "reader",
        "projects": {"vis": {"readers": ["group:ml"], "writers": ["sub:company#1234"],
                             "admins": ["dora@example.com"]}}})
    alice = Principal("company#a", email="alice@example.COM")
    ml = Principal("company#m", groups=frozenset({"ml"}))
    carol = Principal("company#1234", email="carol@example.com")
    other = Principal("other#1234", email="x@y.org")
    assert table.project_role(alice, "vis") == A
    assert table.project_role(ml, "vis") == R
    assert table.project_role(carol, "vis") == W
    assert table.project_role(other, "vis") == R  # signed_in = reader
    assert table.project_role(ANONYMOUS, "vis") == Role.NONE
    assert table.warnings == []
    everyone = parse_roles({"everyone": "admin"})
    assert everyone.project_role(ANONYMOUS, "any") == A
    assert "anyone" in everyone.warnings[0]


@pytest.mark.parametrize(("table", "says"), [
    ({"admin": []}, "unknown [roles] setting 'admin'"),
    ({"admins": "alice@x.org"}, "must be a list"),
    ({"admins": ["alice"]}, "names nobody"),
    ({"admins": ["group:"]}, "names nobody"),
    ({"signed_in": "owner"}, "use \"none\""),
    ({"everyone": 3}, "use \"none\""),
    ({"public_read": "yes"}, "true or false"),
    ({"projects": {"../x": {}}}, "not a project name"),
    ({"projects": {"vis": {"owners": []}}}, "unknown key 'owners'"),
    ({"projects": {"vis": []}}, "must be a table"),
])
def test_bad_roles_tables_name_the_problem(table: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        parse_roles(table)


# -- the policy over a real store ---------------------------------------------------------


def _member() -> tuple[SigningKey, Member]:
    signer = SigningKey.generate()
    return signer, Member(x25519_public(generate_key()), signer.public_bytes)


class CountingLists(BackendWrapper):
    """Counts the listings the directory makes."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.lists = 0

    def list(self, prefix: str = "") -> Iterator[str]:
        self.lists += 1
        return self._inner.list(prefix)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[CountingLists]:
    backend = CountingLists(open_backend(f"memory://authz-{request.node.name}"))
    signer, me = _member()
    ProjectKeys(backend, "pub", signer).create("public", me)
    keys = ProjectKeys(backend, "vis", signer)
    keys.create("private", me)
    keys.rotate()
    yield backend
    backend.close()


def _domains(backend: Backend, project: str) -> list[str]:
    return [k.hex() for k in ProjectKeys(backend, project, None).key_ids().values()]


ROLES = {
    "admins": ["root@example.com"],
    "projects": {"vis": {"readers": ["bob@example.com"], "writers": ["group:writers"],
                         "admins": ["dora@example.com"]},
                 "new": {"writers": ["carol@example.com"]}},
}
BOB = Principal("company#bob", email="bob@example.com")
CAROL = Principal("company#carol", email="carol@example.com", groups=frozenset({"writers"}))
DORA = Principal("company#dora", email="dora@example.com")
ROOT = Principal("company#root", email="root@example.com")
EVE = Principal("company#eve", email="eve@example.com")


def _policy(backend: Backend, roles: dict[str, object] | None = None) -> KeyPolicy:
    return KeyPolicy(backend, parse_roles(ROLES if roles is None else roles),
                     directory=ProjectDirectory(backend, min_interval=0.0))


def test_anonymous_reads_a_public_project_and_is_refused_a_private_one(
        store: CountingLists) -> None:
    policy = _policy(store)
    policy.check(ANONYMOUS, G, "projects/pub/project")
    policy.check(ANONYMOUS, G, f"objects/plain/packs/ab/{PACK}")
    policy.check(ANONYMOUS, G, "config")
    policy.check(ANONYMOUS, L, "projects/pub/")
    for key in ("projects/vis/project", f"objects/{_domains(store, 'vis')[0]}/index/{PACK}"):
        with pytest.raises(NotSignedInError, match="sign in"):
            policy.check(ANONYMOUS, G, key)
    with pytest.raises(NotSignedInError):
        policy.check(ANONYMOUS, L, "projects/vis/")
    with pytest.raises(NotSignedInError):
        policy.check(ANONYMOUS, C, f"objects/plain/packs/ab/{PACK}")
    keys = ["config", "projects/pub/project", "projects/vis/project", "server/audit/1",
            f"objects/{_domains(store, 'vis')[1]}/index/{PACK}", "gc/lock"]
    assert list(policy.visible(ANONYMOUS, keys)) == ["config", "projects/pub/project"]
    # public_read = false: a public project is only for the table's members
    closed = _policy(store, {**ROLES, "public_read": False})
    with pytest.raises(NotSignedInError):
        closed.check(ANONYMOUS, G, "projects/pub/project")


def test_a_reader_reads_and_cannot_write(store: CountingLists) -> None:
    policy = _policy(store)
    for domain in _domains(store, "vis"):
        policy.check(BOB, G, f"objects/{domain}/packs/ab/{PACK}")
    policy.check(BOB, G, "projects/vis/artifacts/ds/versions/0000000000")
    with pytest.raises(NotAuthorizedError) as refused:
        policy.check(BOB, C, "projects/vis/artifacts/ds/versions/0000000001")
    assert str(refused.value) == ("bob@example.com is a reader of project vis; writing "
                                  "versions needs writer")
    with pytest.raises(NotAuthorizedError, match=r"lifecycle events .* needs admin"):
        policy.check(BOB, C, "projects/vis/lifecycle/0000000000")
    domain = _domains(store, "vis")[0]
    with pytest.raises(NotAuthorizedError) as refused:
        policy.check(BOB, C, f"objects/{domain}/packs/ab/{PACK}")
    assert str(refused.value) == (f"bob@example.com is a reader of project vis (key domain "
                                  f"{domain}); writing packs needs writer")
    with pytest.raises(NotAuthorizedError, match="deleting packs needs admin"):
        policy.check(BOB, D, f"objects/{domain}/packs/ab/{PACK}")
    assert policy.role(BOB, "vis") == R
    assert policy.role(BOB, "pub") == R  # public
    assert policy.roles(BOB) == {"pub": "reader", "vis": "reader"}


def test_a_writer_logs_and_cannot_purge_or_replace(store: CountingLists) -> None:
    policy = _policy(store)
    domain = _domains(store, "vis")[1]
    policy.check(CAROL, C, "projects/vis/artifacts/ds/versions/0000000001")
    policy.check(CAROL, C, f"objects/{domain}/packs/ab/{PACK}")
    policy.check(CAROL, P, f"objects/{domain}/packs/ab/{PACK}")
    assert not policy.may_replace(CAROL, f"objects/{domain}/packs/ab/{PACK}")
    policy.check(CAROL, P, f"projects/vis/runs/{RUN}/heartbeat")
    assert policy.may_replace(CAROL, f"projects/vis/runs/{RUN}/heartbeat")
    policy.check(CAROL, G, f"gc/{domain}/condemned/001765000000000-0123456789abcdef")
    for action, key in [(C, "projects/vis/lifecycle/0000000003"),
                        (C, f"gc/{domain}/condemned/001765000000000-0123456789abcdef"),
                        (C, "projects/vis/members/0000000001"),
                        (P, "projects/vis/artifacts/ds/versions/0000000000"),
                        (C, "projects/vis/project")]:
        with pytest.raises(NotAuthorizedError, match=r"carol@example\.com is a writer"):
            policy.check(CAROL, action, key)
    with pytest.raises(NotAuthorizedError) as refused:
        policy.check(CAROL, C, "gc/lock")
    assert str(refused.value) == ("carol@example.com is at most a writer in any project; "
                                  "writing the gc lock needs admin")
    # a writer of vis only: the public projects' domain is not theirs to write
    with pytest.raises(NotAuthorizedError, match="is a reader of the public projects"):
        policy.check(CAROL, C, f"objects/plain/packs/ab/{PACK}")


def test_an_admin_manages_and_a_server_admin_runs_gc(store: CountingLists) -> None:
    policy = _policy(store)
    domain = _domains(store, "vis")[0]
    for action, key in [(C, "projects/vis/lifecycle/0000000003"),
                        (D, "projects/vis/artifacts/ds/versions/0000000000"),
                        (C, f"gc/{domain}/condemned/001765000000000-0123456789abcdef"),
                        (C, "gc/lock"), (D, "gc/lock"), (C, "projects/vis/keys/0000000002/info"),
                        (P, "projects/vis/artifacts/ds/versions/0000000000")]:
        policy.check(DORA, action, key)
    assert policy.may_replace(DORA, f"objects/{domain}/packs/ab/{PACK}")
    assert not policy.server_admin(DORA)
    with pytest.raises(NotAuthorizedError, match=r"needs admin"):
        policy.check(DORA, C, "config")
    with pytest.raises(NotAuthorizedError, match="never allowed"):
        policy.check(DORA, P, "projects/vis/project")
    assert policy.server_admin(ROOT)
    policy.check(ROOT, D, "objects/0000/x")  # a domain no project claims: server admins
    policy.check(ROOT, G, "locks/x")
    for action in Action:
        with pytest.raises(NotAuthorizedError, match="never allowed"):
            policy.check(ROOT, action, "server/tokens/t1")
    with pytest.raises(NotAuthorizedError, match="never allowed"):
        policy.check(ROOT, C, "locks/x")


def test_a_non_member_cannot_read_a_private_projects_objects(store: CountingLists) -> None:
    policy = _policy(store)
    for domain in _domains(store, "vis"):
        with pytest.raises(NotAuthorizedError) as refused:
            policy.check(EVE, G, f"objects/{domain}/packs/ab/{PACK}")
        assert str(refused.value) == (f"eve@example.com has no role in the project of key "
                                      f"domain {domain}; reading packs needs reader")
    with pytest.raises(NotAuthorizedError):
        policy.check(EVE, L, f"objects/{_domains(store, 'vis')[0]}/")
    policy.check(EVE, L, "objects/")  # broad listings are filtered instead
    assert list(policy.visible(EVE, [f"objects/{_domains(store, 'vis')[0]}/index/{PACK}",
                                      f"objects/plain/index/{PACK}"])) == [
        f"objects/plain/index/{PACK}"]


def test_a_copied_key_id_opens_nothing(store: CountingLists) -> None:
    """An admin of another project writes an epoch naming vis's key id: the domain then
    needs a role in both projects, so the copy reads nothing of vis."""
    signer, me = _member()
    ProjectKeys(store, "evil", signer).create("private", me)
    stolen = _domains(store, "vis")[0]
    key = "projects/evil/keys/0000000001/info"
    codec = RecordCodec(signer=signer)
    store.put_if_absent(key, codec.seal(Kind.KEY_EPOCH, key, {
        "project": "evil", "epoch": 1, "key_id": bytes.fromhex(stolen),
        "created_at": "2026-12-06T00:00:00Z", "nonce": b"\0" * 16}))
    policy = _policy(store, {**ROLES, "projects": {**ROLES["projects"],  # type: ignore[dict-item]
                                                   "evil": {"admins": ["eve@example.com"]}}})
    with pytest.raises(NotAuthorizedError):
        policy.check(EVE, G, f"objects/{stolen}/packs/ab/{PACK}")
    policy.check(EVE, G, f"objects/{_domains(store, 'evil')[0]}/packs/ab/{PACK}")


def test_a_token_scope_narrows_every_role(store: CountingLists) -> None:
    policy = _policy(store)
    pub_only = Principal(DORA.subject, DORA.email, token_id="t1",
                         scope=TokenScope(frozenset({"pub"}), W))
    with pytest.raises(NotAuthorizedError, match=r"token t1 does not carry that role"):
        policy.check(pub_only, G, "projects/vis/project")
    read_only = Principal(DORA.subject, DORA.email, token_id="t2",
                          scope=TokenScope(None, R))
    policy.check(read_only, G, "projects/vis/lifecycle/0000000000")
    with pytest.raises(NotAuthorizedError, match=r"is a reader of project vis.*token t2"):
        policy.check(read_only, C, "projects/vis/lifecycle/0000000003")
    root_scoped = Principal(ROOT.subject, ROOT.email, token_id="t3",
                            scope=TokenScope(frozenset({"vis"}), A))
    assert not policy.server_admin(root_scoped)
    policy.check(root_scoped, D, "projects/vis/lifecycle/0000000000")
    with pytest.raises(NotAuthorizedError):
        policy.check(root_scoped, G, "projects/pub/project/x")


def test_a_new_project_is_seen_after_one_refresh(store: CountingLists) -> None:
    policy = _policy(store)
    policy.check(ANONYMOUS, G, "projects/pub/project")
    lists = store.lists
    policy.check(ANONYMOUS, G, "projects/pub/project")
    assert store.lists == lists  # cached
    signer, me = _member()
    ProjectKeys(store, "new", signer).create("private", me)
    domain = _domains(store, "new")[0]
    lists = store.lists
    policy.check(CAROL, C, f"objects/{domain}/packs/ab/{PACK}")  # a miss: one refresh
    assert store.lists == lists + 1
    with pytest.raises(NotSignedInError):
        policy.check(ANONYMOUS, G, "projects/new/project")


def test_an_open_server_is_everyones_but_for_the_servers_keys(
        store: CountingLists, caplog: pytest.LogCaptureFixture) -> None:
    """[roles] everyone = "admin": the single-user mode CORE's protocol tests use; the
    server says so at start."""
    with caplog.at_level("WARNING", logger="artifactstore.server"):
        policy = _policy(store, {"everyone": "admin"})
    assert "without signing in, may delete and purge anything" in caplog.text
    assert policy.server_admin(ANONYMOUS)
    for action in Action:
        policy.check(ANONYMOUS, action, f"objects/{_domains(store, 'vis')[0]}/index/{PACK}")
        policy.check(ANONYMOUS, action, "projects/vis/" if action is L
                     else "projects/vis/lifecycle/0000000000")
        with pytest.raises(NotAuthorizedError):
            policy.check(ANONYMOUS, action, "server/audit/1")
    policy.check(ANONYMOUS, C, "config")


def test_invalid_keys_are_refused_before_any_rule(store: CountingLists) -> None:
    policy = _policy(store, {"everyone": "admin"})
    for key in ("../config", "projects/vis/../pub/project", "/config", "a//b"):
        with pytest.raises(InvalidInputError):
            policy.check(ROOT, G, key)


@pytest.fixture(scope="module")
def shared_store() -> Iterator[Backend]:
    backend = open_backend("memory://authz-shared")
    signer, me = _member()
    ProjectKeys(backend, "pub", signer).create("public", me)
    ProjectKeys(backend, "vis", signer).create("private", me)
    yield backend
    backend.close()


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.one_of(key_like(), st.sampled_from(sorted(TABLE))), max_size=12),
       who=st.sampled_from([ANONYMOUS, BOB, CAROL, DORA, ROOT, EVE]))
def test_a_listing_shows_exactly_the_keys_a_read_would_allow(
        shared_store: Backend, keys: list[str], who: Principal) -> None:
    policy = _policy(shared_store)
    allowed = []
    for key in keys:
        try:
            policy.check(who, G, key)
        except (NotAuthorizedError, NotSignedInError, InvalidInputError):
            continue
        allowed.append(key)
    valid = [k for k in keys if classify(k).kind != "invalid"]
    assert list(policy.visible(who, valid)) == allowed


def test_a_stream_of_misses_lists_at_most_once_per_interval(store: CountingLists) -> None:
    """Requests for domains nobody owns (a typo, or bob probing) cannot make the server
    list projects/ more than once per min_interval; someone the table names nowhere
    (eve) makes it list nothing at all."""
    policy = KeyPolicy(store, parse_roles(ROLES),
                       directory=ProjectDirectory(store, min_interval=0.3))
    policy.check(BOB, G, "projects/vis/project")
    lists = store.lists
    errors: list[BaseException] = []

    def probe(worker: int) -> None:
        for i in range(5):
            try:
                policy.check(BOB, G, f"objects/{worker:02d}{i:030d}/index/{PACK}")
            except NotAuthorizedError:
                pass
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=probe, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - started
    assert errors == []
    assert 1 <= store.lists - lists <= elapsed / 0.3 + 1
    lists = store.lists
    for i in range(20):
        with pytest.raises(NotAuthorizedError):
            policy.check(EVE, G, f"objects/ff{i:030d}/index/{PACK}")
    assert store.lists == lists
