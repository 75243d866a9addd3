"""The identity commands through the real CLI entry point: output, prompts, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from artifactstore.cli import main
from artifactstore.local.identity import (
    PASSPHRASE_ENV,
    PublicIdentity,
    create_identity,
    identity_backups,
    load_identity,
)
from artifactstore.testing.keys import CHEAP_SCRYPT


class _Terminal(io.StringIO):
    """stdin as an interactive terminal (getpass itself is replaced per test)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(folder))
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal unless a test says so
    return folder


def _answers(monkeypatch: pytest.MonkeyPatch, *answers: str) -> list[str]:
    """Make stdin a terminal whose getpass prompts get ``answers``; returns the prompts."""
    prompts: list[str] = []
    replies = iter(answers)

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(replies)

    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    return prompts


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_create_without_a_terminal_is_unprotected_and_says_so(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["identity", "create", "--name", "ana@lab"]) == 0
    out, err = capsys.readouterr()
    public = PublicIdentity.parse(out)
    assert out.count("\n") == 1
    assert public.name == "ana@lab"
    assert "stdin is not a terminal, so the identity gets no passphrase" in err
    assert public.fingerprint in err
    identity = load_identity()
    assert identity.public == public
    assert not identity.protected


def test_create_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = _json(capsys, "identity", "create", "--no-passphrase", "--name", "ana")
    assert code == 0
    identity = load_identity()
    assert result == {"name": "ana", "fingerprint": identity.public.fingerprint,
                      "public": identity.public.to_line(),
                      "path": str(config / "identity.json"), "protected": False,
                      "declared": None}


def test_show_prints_a_line_that_parses_back(capsys: pytest.CaptureFixture[str]) -> None:
    created = create_identity("Ana Lima", "pw", scrypt=CHEAP_SCRYPT)
    assert main(["identity", "show"]) == 0  # no passphrase needed for the public part
    out, err = capsys.readouterr()
    assert err == ""
    assert PublicIdentity.parse(out) == created.public
    assert out == created.public.to_line() + "\n"


def test_show_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    created = create_identity("ana", "pw", scrypt=CHEAP_SCRYPT)
    code, result = _json(capsys, "identity", "show")
    assert code == 0
    assert result == {"name": "ana", "fingerprint": created.public.fingerprint,
                      "public": created.public.to_line(),
                      "path": str(config / "identity.json"), "protected": True,
                      "declared": None}


def test_show_without_an_identity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["identity", "show"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no identity at" in err
    assert "run 'artifactstore identity create'" in err


def test_create_refuses_to_overwrite_and_force_keeps_a_backup(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = create_identity("ana")
    assert main(["identity", "create", "--no-passphrase"]) == 4
    assert "use --force to replace it" in capsys.readouterr().err
    assert load_identity() == first
    assert main(["identity", "create", "--no-passphrase", "--force", "--name", "bob"]) == 0
    out, err = capsys.readouterr()
    assert PublicIdentity.parse(out).name == "bob"
    (backup,) = identity_backups()
    assert f"the old identity was kept as {backup}" in err
    assert load_identity(path=backup) == first


def test_passphrase_stdin_with_the_default_scrypt_cost(
        config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("tr0ub4dor &3\nignored\n"))
    code, result = _json(capsys, "identity", "create", "--passphrase-stdin")
    assert code == 0
    assert result["protected"] is True
    private = json.loads((config / "identity.json").read_text())["private"]
    assert (private["kind"], private["log_n"], private["r"], private["p"]) == ("scrypt", 17, 8, 1)
    assert load_identity("tr0ub4dor &3").public.fingerprint == result["fingerprint"]


def test_passphrase_stdin_must_not_be_empty(config: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["identity", "create", "--passphrase-stdin"]) == 2
    assert "no passphrase on stdin" in capsys.readouterr().err
    assert not (config / "identity.json").exists()


def test_passphrase_flags_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["identity", "create", "--no-passphrase", "--passphrase-stdin"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_terminal_prompts_twice_and_mismatch_is_exit_2(
        config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    prompts = _answers(monkeypatch, "one", "two")
    assert main(["identity", "create"]) == 2
    assert len(prompts) == 2
    err = capsys.readouterr().err
    assert err == "artifactstore: error: the two passphrases differ; run the command again\n"
    assert not (config / "identity.json").exists()


def test_terminal_empty_passphrase_means_none(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _answers(monkeypatch, "", "")
    assert main(["identity", "create", "--name", "ana"]) == 0
    assert "without a passphrase" in capsys.readouterr().err
    assert not load_identity().protected


def test_existing_identity_is_refused_before_prompting(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    create_identity("ana")
    prompts = _answers(monkeypatch)
    assert main(["identity", "create"]) == 4
    assert prompts == []


def test_check_wrong_passphrase_is_exit_12(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    create_identity("ana", "right", scrypt=CHEAP_SCRYPT)
    monkeypatch.setenv(PASSPHRASE_ENV, "hunter2")
    assert main(["identity", "check"]) == 12
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "wrong passphrase for identity" in err
    assert "check ARTIFACTSTORE_PASSPHRASE" in err
    assert "hunter2" not in err  # the passphrase is never echoed
    assert main(["identity", "check", "--json"]) == 12
    assert json.loads(capsys.readouterr().out)["exit_code"] == 12


@pytest.mark.parametrize("command", ["ls", "log", "get"])
def test_a_wrong_passphrase_opening_a_private_project_says_so(
        config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], command: str) -> None:
    create_identity("ana", "right", scrypt=CHEAP_SCRYPT)
    store = str(tmp_path / "store")
    (tmp_path / "a.txt").write_text("a")
    monkeypatch.setenv(PASSPHRASE_ENV, "right")
    assert main(["init", store]) == 0
    assert main(["log", "d", str(tmp_path / "a.txt"), "--store", store]) == 0
    capsys.readouterr()
    monkeypatch.setenv(PASSPHRASE_ENV, "hunter2")
    argv = {"ls": ["ls"], "log": ["log", "d", str(tmp_path / "a.txt")],
            "get": ["get", "d:v0", "--dir", str(tmp_path / "out")]}[command]
    assert main([*argv, "--store", store]) == 12
    err = capsys.readouterr().err
    assert err == (f"artifactstore: error: wrong passphrase for identity "
                   f"{config / 'identity.json'}; check ARTIFACTSTORE_PASSPHRASE\n")


def test_check_without_a_passphrase_is_exit_12(capsys: pytest.CaptureFixture[str]) -> None:
    create_identity("ana", "right", scrypt=CHEAP_SCRYPT)
    assert main(["identity", "check"]) == 12
    assert "set ARTIFACTSTORE_PASSPHRASE or run interactively" in capsys.readouterr().err


def test_check_with_the_environment_and_a_prompt(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    created = create_identity("ana", "right", scrypt=CHEAP_SCRYPT)
    monkeypatch.setenv(PASSPHRASE_ENV, "right")
    code, result = _json(capsys, "identity", "check")
    assert code == 0
    assert result["ok"] is True
    assert result["fingerprint"] == created.public.fingerprint
    monkeypatch.delenv(PASSPHRASE_ENV)
    prompts = _answers(monkeypatch, "right")
    assert main(["identity", "check"]) == 0
    assert len(prompts) == 1
    assert "the passphrase opens them" in capsys.readouterr().out


def test_check_reports_a_tampered_file(config: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    create_identity("ana")
    path = config / "identity.json"
    document = json.loads(path.read_text())
    document["ed25519_public"] = "00" * 32
    path.write_text(json.dumps(document))
    assert main(["identity", "check"]) == 5
    assert main(["identity", "show"]) == 5  # never hand teammates a key we cannot open
    assert "do not match its public keys" in capsys.readouterr().err
