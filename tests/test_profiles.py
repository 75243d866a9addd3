"""Members shown with the name and e-mail their identity declares (issue 19; design §13.1).

Each person is an identity in a config folder of their own with a cache of their own;
``become`` switches who runs the next command. Stores are local folders made by
``artifactstore init`` (private by default), read back as the storage admin would.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_calls import cli, cli_json
from test_cli_project import _log

from artifactstore.backends import open_backend
from artifactstore.core.errors import InvalidInputError
from artifactstore.local.identity import (
    CONFIG_DIR_ENV,
    PASSPHRASE_ENV,
    PublicIdentity,
    create_identity,
    load_identity,
    load_or_create_identity,
)
from artifactstore.maintenance.projects import show_project
from artifactstore.objects.envelope import Kind
from artifactstore.records.codec import RecordCodec
from artifactstore.records.profiles import ProfileBook
from artifactstore.records.projects import Member, ProjectKeys
from artifactstore.repository.access import member_of

Become = Callable[[str], PublicIdentity]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (PASSPHRASE_ENV, "ARTIFACTSTORE_PROJECT_PASSPHRASE", "ARTIFACTSTORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


@pytest.fixture
def become(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Become:
    def switch(name: str) -> PublicIdentity:
        monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "people" / name))
        monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache" / name))
        path = tmp_path / "people" / name / "identity.json"
        made = load_or_create_identity() if path.exists() else create_identity(name)
        return made.public

    return switch


@pytest.fixture
def url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A store made by ``artifactstore init`` (private by default)."""
    assert cli(capsys, "init", str(tmp_path / "store"))[0] == 0
    return str(tmp_path / "store")


def _declare(capsys: pytest.CaptureFixture[str], *argv: str) -> None:
    code, out = cli_json(capsys, "identity", "declare", *argv)
    assert code == 0, out


def _profile_keys(url: str, project: str) -> list[Path]:
    folder = Path(url) / "projects" / project / "profiles"
    return sorted(path for path in folder.glob("*/*") if path.is_file())


def _team(url: str, tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]
          ) -> tuple[PublicIdentity, PublicIdentity]:
    """alice creates private project "vision" with bob; both declare; both have written."""
    bob = become("bob")
    _declare(capsys, "--name", "Bob Builder", "--email", "bob@example.org")
    alice = become("alice")
    _declare(capsys, "--name", "Alice Liddell", "--email", "alice@example.org")
    assert cli(capsys, "project", "create", "vision", "--store", url,
               "--member", bob.to_line())[0] == 0
    become("bob")
    _log(url, "vision", tmp_path / "bob", "bob's data")
    return alice, bob


def test_members_see_each_others_declared_name_and_email(
        url: str, tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob = _team(url, tmp_path, become, capsys)
    become("alice")
    code, shown = cli_json(capsys, "project", "show", "vision", "--store", url)
    assert code == 0
    assert shown["members"] == [alice.fingerprint, bob.fingerprint]
    assert shown["profiles"][alice.fingerprint]["name"] == "Alice Liddell"
    assert shown["profiles"][bob.fingerprint]["email"] == "bob@example.org"
    assert shown["profiles_hidden"] is None
    code, out, _ = cli(capsys, "project", "show", "vision", "--store", url)
    assert f"{alice.fingerprint}  Alice Liddell <alice@example.org> (you)" in out
    assert f"{bob.fingerprint}  Bob Builder <bob@example.org>" in out


def test_the_storage_admin_and_non_members_see_no_name_or_email(
        url: str, tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    _team(url, tmp_path, become, capsys)
    assert len(_profile_keys(url, "vision")) == 2
    for path in Path(url).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (b"Alice Liddell", b"alice@example.org", b"Bob Builder",
                           b"bob@example.org"):
                assert secret not in data, path
    carol = become("carol")
    summary = show_project("vision", url)
    assert summary.profiles == {}
    assert summary.profiles_hidden == "names are readable by members only"
    code, out, _ = cli(capsys, "project", "show", "vision", "--store", url)
    assert code == 0
    assert "(names are readable by members only)" in out
    assert carol.fingerprint not in out


def test_a_public_project_shows_profiles_to_anyone(
        tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "open")
    assert cli(capsys, "init", url, "--public")[0] == 0
    alice = become("alice")
    _declare(capsys, "--name", "Alice Liddell")
    _log(url, "open", tmp_path / "a", "hello")  # the first write creates and declares
    become("nobody")
    summary = show_project("open", url)
    assert summary.profiles[alice.fingerprint].name == "Alice Liddell"
    assert summary.profiles[alice.fingerprint].email is None


def test_a_declaration_is_written_once_and_again_only_when_it_changes(
        url: str, tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    alice, _ = _team(url, tmp_path, become, capsys)
    before = _profile_keys(url, "vision")
    become("alice")
    _log(url, "vision", tmp_path / "a1", "one")
    _log(url, "vision", tmp_path / "a2", "two")
    assert _profile_keys(url, "vision") == before  # written at create, marked since
    shutil.rmtree(tmp_path / "cache" / "alice")  # a new machine: checks, finds it, marks
    _log(url, "vision", tmp_path / "a3", "three")
    assert _profile_keys(url, "vision") == before
    _declare(capsys, "--email", "alice@wonderland.example")
    _log(url, "vision", tmp_path / "a4", "four")
    assert len(_profile_keys(url, "vision")) == len(before) + 1
    shown = show_project("vision", url).profiles[alice.fingerprint]
    assert (shown.name, shown.email, shown.seq) == ("Alice Liddell",
                                                    "alice@wonderland.example", 1)
    _declare(capsys, "--forget")
    _log(url, "vision", tmp_path / "a5", "five")
    assert len(_profile_keys(url, "vision")) == len(before) + 1  # forgetting writes nothing


def test_someone_who_declares_nothing_writes_no_profile(
        url: str, tmp_path: Path, become: Become) -> None:
    alice = become("alice")
    _log(url, "quiet", tmp_path / "q", "data")
    assert _profile_keys(url, "quiet") == []
    assert show_project("quiet", url).profiles == {}
    assert show_project("quiet", url).members == (alice.fingerprint,)


def test_a_profile_moved_planted_or_damaged_shows_nothing_wrong(
        url: str, tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob = _team(url, tmp_path, become, capsys)
    folder = Path(url) / "projects" / "vision" / "profiles"
    alices = folder / alice.fingerprint / "0000000000"
    bobs = folder / bob.fingerprint / "0000000000"
    # The admin copies alice's profile over a newer seq of bob's: bob still reads as bob.
    shutil.copyfile(alices, folder / bob.fingerprint / "0000000001")
    # A planted profile under a non-member's fingerprint is not shown at all.
    (folder / ("f" * 32)).mkdir()
    shutil.copyfile(alices, folder / ("f" * 32) / "0000000000")
    become("alice")
    summary = show_project("vision", url)
    assert summary.profiles[bob.fingerprint].name == "Bob Builder"
    assert set(summary.profiles) == {alice.fingerprint, bob.fingerprint}
    # A damaged byte: bob's profile is no longer shown (not guessed).
    data = bytearray(bobs.read_bytes())
    data[-3] ^= 1
    bobs.write_bytes(bytes(data))
    summary = show_project("vision", url)
    assert bob.fingerprint not in summary.profiles
    assert summary.profiles[alice.fingerprint].name == "Alice Liddell"


@pytest.mark.parametrize(("argv", "word"), [
    (("--email", "not an e-mail"), "e-mail"),
    (("--email", "a@b@c"), "e-mail"),
    (("--name", " padded"), "name"),
    (("--name", "x" * 129), "name"),
    (("--forget", "--name", "x"), "--forget"),
])
def test_bad_declarations_are_refused_in_one_line(
        argv: tuple[str, ...], word: str, become: Become,
        capsys: pytest.CaptureFixture[str]) -> None:
    become("alice")
    code, out, err = cli(capsys, "identity", "declare", *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert word in err


def test_identity_show_tells_what_is_declared(
        become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    become("alice")
    code, shown = cli_json(capsys, "identity", "show")
    assert code == 0
    assert shown["declared"] is None
    _declare(capsys, "--email", "alice@example.org")  # the name defaults to the identity's
    code, shown = cli_json(capsys, "identity", "show")
    assert shown["declared"] == {"name": "alice", "email": "alice@example.org"}


def test_a_member_cannot_write_a_profile_that_reads_as_another_members(
        url: str, tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    _, bob = _team(url, tmp_path, become, capsys)
    become("alice")
    me = load_identity()
    backend = open_backend(url)
    keys = ProjectKeys(backend, "vision", me.signing_key)
    ring = keys.ring(keys.unlock(me.x25519_private, member_of(me)))
    codec = RecordCodec(signer=me.signing_key, ring=ring)
    book = ProfileBook(backend, "vision", codec)
    bobs = Member(bob.x25519, bob.ed25519)
    with pytest.raises(InvalidInputError):
        book.declare(bobs, "Bob (really Alice)", "alice@evil.example")
    # Sealed by hand: encrypted and validly signed, but by alice, under bob's key.
    key = book.key(bob.fingerprint, 7)
    body = {"project": "vision", "member": bobs.as_body(), "seq": 7,
            "name": "Bob (really Alice)", "email": "alice@evil.example",
            "at": "2026-12-06T00:00:00+00:00", "nonce": b"\0" * 16}
    assert backend.put_if_absent(key, codec.seal(Kind.PROFILE, key, body))
    shown = show_project("vision", url).profiles[bob.fingerprint]
    assert (shown.name, shown.seq) == ("Bob Builder", 0)
    assert book.latest([bobs])[bob.fingerprint].seq == 0
    assert book.skipped == 1
