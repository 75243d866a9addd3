"""``init`` (private by default) and the project commands through the real CLI entry point.

Each person (alice, bob, carol) is an identity in a config folder of their own,
with a cache of their own; switching ``ARTIFACTSTORE_CONFIG_DIR`` switches who runs
the next command. Stores are local folders.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from artifactstore.core.errors import AccessDeniedError, NotFoundError
from artifactstore.local.identity import (
    CONFIG_DIR_ENV,
    PASSPHRASE_ENV,
    PublicIdentity,
    identity_path,
    load_or_create_identity,
)
from artifactstore.maintenance.projects import show_project
from cli_calls import cli, cli_json

import artifactstore

Become = Callable[..., PublicIdentity | None]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv("ARTIFACTSTORE_PROJECT_PASSPHRASE", raising=False)
    monkeypatch.delenv("ARTIFACTSTORE_URL", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


@pytest.fixture
def become(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Become:
    """``become("bob")``: the next commands run as bob (his identity made if needed);
    ``become("nobody", identity=False)``: as a user without any identity."""

    def switch(name: str, *, identity: bool = True) -> PublicIdentity | None:
        monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "people" / name))
        monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache" / name))
        return load_or_create_identity().public if identity else None

    return switch


def _person(become: Become, name: str) -> PublicIdentity:
    public = become(name)
    assert public is not None
    return public


@pytest.fixture
def url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A store made by ``artifactstore init`` (private by default)."""
    store = str(tmp_path / "store")
    assert cli(capsys, "init", store)[0] == 0
    return store


def _log(url: str, project: str, folder: Path, text: str) -> str:
    """Log a one-file version of ``data`` as the current person; returns its ref."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.txt"
    path.write_text(text)
    with artifactstore.open(url, project) as store:
        return store.log_artifact(path, name="data", type="dataset").ref


def _read(url: str, project: str, ref: str) -> list[str]:
    with artifactstore.open(url, project) as store:
        return [entry.path for entry in store.artifact(ref).files()]


# -- init ---------------------------------------------------------------------------------


def test_init_makes_new_projects_private(url: str, become: Become,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, info = cli_json(capsys, "info", "--store", url)
    assert code == 0
    assert info["private_by_default"] is True
    alice = _person(become, "alice")
    with artifactstore.open(url, "first", create=True) as store:
        assert store.refs.codec.encrypted
    summary = show_project("first", url)
    assert (summary.visibility, summary.members) == ("private", (alice.fingerprint,))


def test_init_public_keeps_projects_public(tmp_path: Path, become: Become,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "store")
    code, created = cli_json(capsys, "init", url, "--public")
    assert code == 0
    assert created["created"] is True
    assert created["private_by_default"] is False
    become("alice")
    with artifactstore.open(url, "first", create=True) as store:
        assert not store.refs.codec.encrypted
    assert cli_json(capsys, "info", "--store", url)[1]["private_by_default"] is False


def test_init_shows_an_existing_store_without_changing_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "store")
    code, out, _ = cli(capsys, "init", url)
    assert code == 0
    assert out.startswith(f"created store {url}\n")
    assert "new projects are private (encrypted) by default" in out
    code, again = cli_json(capsys, "init", url, "--public")
    assert code == 0
    assert (again["created"], again["private_by_default"]) == (False, True)
    code, out, _ = cli(capsys, "init", url, "--public")
    assert out.startswith(f"existing (not changed): store {url}\n")
    assert "private (encrypted) by default" in out
    # A store the library made on first use is the library's default: public.
    plain = str(tmp_path / "plain")
    artifactstore.open(plain, create=True).close()
    code, shown = cli_json(capsys, "init", plain)
    assert (shown["created"], shown["private_by_default"]) == (False, False)


# -- create, show, members ----------------------------------------------------------------


def test_create_private_with_a_member_then_add_another(
        url: str, tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    bob = _person(become, "bob")
    carol = _person(become, "carol")
    alice = _person(become, "alice")
    # bob's whole line (key, space, name) is one argument
    code, created = cli_json(capsys, "project", "create", "vision", "--store", url,
                             "--member", bob.to_line())
    assert code == 0
    assert created == show_project("vision", url).as_dict()
    assert created["visibility"] == "private"
    assert created["members"] == [alice.fingerprint, bob.fingerprint]
    assert created["epochs"] == 1
    _log(url, "vision", tmp_path / "v0", "first")

    become("bob")
    code, out, _ = cli(capsys, "ls", "--store", url, "--project", "vision")
    assert code == 0
    assert "data" in out

    become("carol")
    code, out, err = cli(capsys, "ls", "--store", url, "--project", "vision")
    assert code == 12
    assert out == ""
    assert err.count("\n") == 1
    assert carol.fingerprint in err
    assert "ask a member to run 'artifactstore project members add'" in err

    become("alice")  # the key part alone is enough
    code, out, _ = cli(capsys, "project", "members", "add", carol.to_line().split()[0],
                       "--project", "vision", "--store", url)
    assert code == 0
    assert f"{alice.fingerprint} (you)" in out
    assert carol.fingerprint in out
    become("carol")
    assert _read(url, "vision", "data:v0") == ["data.txt"]


def test_removed_member_cannot_read_what_is_logged_afterwards(
        url: str, tmp_path: Path, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    bob = _person(become, "bob")
    become("alice")
    assert cli(capsys, "project", "create", "vision", "--store", url,
               "--member", bob.to_line())[0] == 0
    assert _log(url, "vision", tmp_path / "v0", "before") == "data:v0"

    code, out, _ = cli(capsys, "project", "members", "rm", bob.fingerprint,
                       "--project", "vision", "--store", url)
    assert code == 0
    assert bob.fingerprint not in out
    (note,) = [line for line in out.splitlines() if "key epoch" in line and "started" in line]
    assert note.startswith("started key epoch 1: ")
    assert "data already shared stays readable to whoever kept it" in note
    assert "docs/security.md" in note
    assert _log(url, "vision", tmp_path / "v1", "after") == "data:v1"

    become("bob")
    with pytest.raises(AccessDeniedError):
        _read(url, "vision", "data:latest")
    assert _read(url, "vision", "data:v0") == ["data.txt"]  # rotation takes nothing back


def test_members_rm_json_and_a_public_project_keeps_its_epochs(
        url: str, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    bob = _person(become, "bob")
    alice = _person(become, "alice")
    assert cli(capsys, "project", "create", "open", "--visibility", "public", "--store", url,
               "--member", bob.to_line())[0] == 0
    code, removed = cli_json(capsys, "project", "members", "rm", bob.to_line(),
                             "--project", "open", "--store", url)
    assert code == 0
    assert removed["members"] == [alice.fingerprint]
    assert (removed["epochs"], removed["new_epoch"]) == (0, None)
    assert cli(capsys, "project", "create", "secret", "--store", url,
               "--member", bob.to_line())[0] == 0
    code, removed = cli_json(capsys, "project", "members", "rm", bob.fingerprint.upper(),
                             "--project", "secret", "--store", url)
    assert code == 0
    assert (removed["epochs"], removed["new_epoch"]) == (2, 1)


def test_passphrase_slot_opens_the_project_without_an_identity(
        url: str, tmp_path: Path, become: Become, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The CLI uses the default scrypt cost: one derivation to create, one to open.
    become("alice")
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\nignored\n"))
    code, out, _ = cli(capsys, "project", "create", "vault", "--passphrase-stdin",
                       "--store", url)
    assert code == 0
    assert "correct horse" not in out
    _log(url, "vault", tmp_path / "v0", "secret")
    become("nobody", identity=False)
    with artifactstore.open(url, "vault", passphrase="correct horse battery") as store:
        assert [e.path for e in store.artifact("data:v0").files()] == ["data.txt"]
    assert not identity_path().exists()
    with pytest.raises(AccessDeniedError, match="no identity that opens it"):
        artifactstore.open(url, "vault")


def test_show_names_and_defaults(url: str, become: Become,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    alice = _person(become, "alice")
    # NAME wins over --project
    code, created = cli_json(capsys, "project", "create", "named", "--project", "other",
                             "--store", url)
    assert code == 0
    assert created["project"] == "named"
    code, out, _ = cli(capsys, "project", "show", "--project", "named", "--store", url)
    assert code == 0
    assert out.splitlines()[0].startswith("project named: private, created ")
    assert out.splitlines()[1:] == ["  members (1):", f"    {alice.fingerprint} (you)",
                                    "  pin: none on this machine yet (the first open pins it)"]
    assert cli_json(capsys, "project", "show", "named", "--project", "x",
                    "--store", url)[1]["project"] == "named"
    code, shown = cli_json(capsys, "project", "show", "--store", url)
    assert (code, shown["error"]) == (3, "NotFoundError")  # nothing was written to it yet
    code, out, err = cli(capsys, "project", "show", "nothing-yet", "--store", url)
    assert (code, out) == (3, "")
    assert err == ("artifactstore: error: project 'nothing-yet' does not exist in "
                   f"{url}; the first write into it creates it, or run 'artifactstore "
                   "project create nothing-yet'\n")


def test_quiet_create_prints_nothing(url: str, become: Become,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    become("alice")
    assert cli(capsys, "project", "create", "hush", "--quiet", "--store", url) == (0, "", "")


# -- bad inputs: one line and an exit code --------------------------------------------------


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, *argv: str) -> str:
    got, out, err = cli(capsys, *argv)
    assert (got, out) == (code, "")
    assert err.count("\n") == 1
    assert err.startswith("artifactstore: error: ")
    return err


def test_a_bad_member_line_is_refused_before_anything_is_made(
        url: str, become: Become, capsys: pytest.CaptureFixture[str]) -> None:
    bob = _person(become, "bob")
    become("alice", identity=False)
    cut = bob.to_line()[:60]
    err = _one_line_error(capsys, 2, "project", "create", "vision", "--store", url,
                          "--member", cut)
    assert "was it cut?" in err
    assert not identity_path().exists()
    with pytest.raises(NotFoundError):  # nothing was made
        show_project("vision", url)
    err = _one_line_error(capsys, 2, "project", "create", "vision", "--store", url,
                          "--member", bob.fingerprint)
    assert "(that is a fingerprint)" in err


def test_member_commands_refuse_bad_requests(url: str, become: Become,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bob = _person(become, "bob")
    carol = _person(become, "carol")
    alice = _person(become, "alice")
    assert cli(capsys, "project", "create", "vision", "--store", url)[0] == 0
    where = ("--project", "vision", "--store", url)
    err = _one_line_error(capsys, 4, "project", "create", "vision", "--store", url)
    assert "already exists" in err
    err = _one_line_error(capsys, 2, "project", "members", "add", bob.fingerprint, *where)
    assert "(that is a fingerprint)" in err
    err = _one_line_error(capsys, 2, "project", "members", "rm", "bob", *where)
    assert "neither a public identity line" in err
    err = _one_line_error(capsys, 3, "project", "members", "rm", carol.fingerprint, *where)
    assert "is not a member" in err
    err = _one_line_error(capsys, 2, "project", "members", "rm", alice.fingerprint, *where)
    assert "last member" in err
    err = _one_line_error(capsys, 2, "project", "members", "add", bob.to_line(),
                          "--project", "unrecorded", "--store", url)
    assert "has no record" in err

    become("bob")  # not a member: may not add himself
    err = _one_line_error(capsys, 12, "project", "members", "add", bob.to_line(), *where)
    assert f"identity {bob.fingerprint} is not a member" in err
    code, result = cli_json(capsys, "project", "members", "add", bob.to_line(), *where)
    assert (code, result["exit_code"], result["error"]) == (12, 12, "AccessDeniedError")


def test_passphrase_stdin_must_not_be_empty(url: str, become: Become,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    become("alice")
    err = _one_line_error(capsys, 2, "project", "create", "vault", "--passphrase-stdin",
                          "--store", url)
    assert "no passphrase on stdin" in err
    with pytest.raises(NotFoundError):  # nothing was made
        show_project("vault", url)


def test_unknown_visibility_is_a_usage_error(url: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(capsys, "project", "create", "x", "--visibility", "secret", "--store", url)
    assert exc.value.code == 2
    assert "invalid choice: 'secret'" in capsys.readouterr().err
