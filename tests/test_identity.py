"""User identities: public lines, the identity file, passphrases, tampering, races."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from artifactstore.core.crypto import unwrap_key, verify_signature, wrap_key, x25519_keypair
from artifactstore.core.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    FormatError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.local.identity import (
    PASSPHRASE_ENV,
    PublicIdentity,
    config_dir,
    create_identity,
    identity_backups,
    identity_info,
    identity_path,
    load_identity,
    load_or_create_identity,
)

from artifactstore.testing.keys import CHEAP_SCRYPT
from artifactstore.testing.processes import run_workers

ASK = "ask your teammate to run 'artifactstore identity show' and paste the whole line"


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config" / "artifactstore"
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(folder))
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    return folder


def _public() -> PublicIdentity:
    return PublicIdentity("ana@lab", x25519_keypair()[1], bytes(range(32)))


# -- locations ---------------------------------------------------------------------------


def test_config_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_dir() == tmp_path / "config" / "artifactstore"
    assert identity_path() == config_dir() / "identity.json"
    monkeypatch.delenv("ARTIFACTSTORE_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "artifactstore"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_dir() == tmp_path / "home" / ".config" / "artifactstore"


# -- the public line ---------------------------------------------------------------------


def test_public_line_round_trip() -> None:
    public = _public()
    line = public.to_line()
    assert line.startswith("asid1")
    assert line.endswith(" ana@lab")
    assert line == line.lower()
    assert len(line.split()[0]) == 5 + 109
    assert PublicIdentity.parse(line) == public
    assert PublicIdentity.parse(f"  \t{line}\n") == public
    assert PublicIdentity.parse(line.upper().replace("ANA@LAB", "ana@lab")) == public
    spaced = PublicIdentity("Ana Lima (lab)", public.x25519, public.ed25519)
    assert PublicIdentity.parse(spaced.to_line()) == spaced


def test_public_line_without_name() -> None:
    public = _public()
    bare = PublicIdentity.parse(public.to_line().split()[0])
    assert bare.name == ""
    assert (bare.x25519, bare.ed25519) == (public.x25519, public.ed25519)
    assert bare.fingerprint == public.fingerprint  # the name is not part of it
    assert bare.to_line() == public.to_line().split()[0]


def test_fingerprint_is_32_hex_and_depends_on_both_keys() -> None:
    public = _public()
    assert len(public.fingerprint) == 32
    int(public.fingerprint, 16)
    other = PublicIdentity(public.name, public.x25519, bytes(32))
    assert other.fingerprint != public.fingerprint
    assert public.fingerprint in repr(public)


def test_every_one_character_change_is_a_checksum_mismatch() -> None:
    key = _public().to_line().split()[0]
    for i in range(5, len(key)):
        for replacement in "a7q":
            if replacement == key[i]:
                continue
            damaged = key[:i] + replacement + key[i + 1:]
            with pytest.raises(InvalidInputError, match="checksum mismatch") as exc:
                PublicIdentity.parse(damaged)
            assert ASK in str(exc.value)


@pytest.mark.parametrize("cut", [1, 8, 60])
def test_wrong_length(cut: int) -> None:
    key = _public().to_line().split()[0]
    with pytest.raises(InvalidInputError, match="wrong length") as exc:
        PublicIdentity.parse(key[:-cut])
    assert ASK in str(exc.value)
    with pytest.raises(InvalidInputError, match="wrong length"):
        PublicIdentity.parse(key + "a" * cut)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", "not an artifactstore identity"),
        ("ssh-ed25519 AAAAC3Nz user@host", "not an artifactstore identity"),
        ("0123456789abcdef0123456789abcdef", "that is a fingerprint"),
        ("asid1" + "!" * 109, "not base32"),
        ("asid1" + "1" * 109, "not base32"),
    ],
)
def test_not_an_identity(line: str, expected: str) -> None:
    with pytest.raises(InvalidInputError, match=expected) as exc:
        PublicIdentity.parse(line)
    assert ASK in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", [" ana", "ana ", "a\nb", "a\tb", "x" * 129, "a\u00a0b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidInputError, match="name"):
        PublicIdentity(name, bytes(32), bytes(32))


def test_key_sizes() -> None:
    with pytest.raises(InvalidInputError, match="32 bytes"):
        PublicIdentity("a", bytes(31), bytes(32))
    with pytest.raises(InvalidInputError, match="32 bytes"):
        PublicIdentity("a", bytes(32), bytearray(32))  # type: ignore[arg-type]


# -- create and load ---------------------------------------------------------------------


def test_plain_round_trip(config: Path) -> None:
    created = create_identity("ana@lab")
    assert not created.protected
    loaded = load_identity()
    assert loaded == created
    assert loaded.signing_key.private_bytes == created.signing_key.private_bytes
    document = json.loads((config / "identity.json").read_text())
    assert document["format"] == "artifactstore-identity"
    assert document["version"] == 1
    assert document["name"] == "ana@lab"
    assert document["private"]["kind"] == "plain"
    assert bytes.fromhex(document["x25519_public"]) == created.public.x25519
    assert bytes.fromhex(document["ed25519_public"]) == created.public.ed25519
    # The keys work: a project key wrapped for the public key opens, signatures verify.
    key = os.urandom(32)
    assert unwrap_key(loaded.x25519_private, wrap_key(loaded.public.x25519, key)) == key
    signature = loaded.signing_key.sign(b"test", b"message")
    assert verify_signature(created.public.ed25519, b"test", b"message", signature)
    info = identity_info()
    assert (info.public, info.created_at, info.protected) == (created.public,
                                                              created.created_at, False)


def test_default_name_is_user_at_host() -> None:
    name = create_identity().public.name
    assert "@" in name
    assert name == name.strip()
    assert name.isprintable()


def test_empty_name_is_refused(config: Path) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        create_identity("")
    assert not config.exists()


def test_protected_round_trip(config: Path) -> None:
    created = create_identity("ana", "correct horse", scrypt=CHEAP_SCRYPT)
    assert created.protected
    assert load_identity("correct horse") == created
    private = json.loads((config / "identity.json").read_text())["private"]
    assert private["kind"] == "scrypt"
    assert (private["log_n"], private["r"], private["p"]) == (10, 8, 1)
    assert created.x25519_private.hex() not in (config / "identity.json").read_text()
    info = identity_info()  # the public part needs no passphrase
    assert info.public == created.public
    assert info.protected


def test_protected_needs_a_passphrase() -> None:
    create_identity("ana", "secret", scrypt=CHEAP_SCRYPT)
    with pytest.raises(AccessDeniedError,
                       match="protected by a passphrase; set ARTIFACTSTORE_PASSPHRASE"):
        load_identity()


def test_wrong_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    create_identity("ana", "secret", scrypt=CHEAP_SCRYPT)
    with pytest.raises(AccessDeniedError, match="wrong passphrase for identity") as exc:
        load_identity("Secret")
    assert exc.value.exit_code == 12
    with pytest.raises(AccessDeniedError, match="wrong passphrase"):
        load_identity("")
    monkeypatch.setenv(PASSPHRASE_ENV, "nope")
    with pytest.raises(AccessDeniedError, match="check ARTIFACTSTORE_PASSPHRASE"):
        load_identity()


def test_passphrase_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    created = create_identity("ana", "from env", scrypt=CHEAP_SCRYPT)
    monkeypatch.setenv(PASSPHRASE_ENV, "from env")
    assert load_identity() == created
    assert load_identity("from env") == created
    monkeypatch.setenv(PASSPHRASE_ENV, "")  # empty counts as unset
    with pytest.raises(AccessDeniedError, match="is protected"):
        load_identity()


def test_empty_passphrase_on_create_is_refused(config: Path) -> None:
    with pytest.raises(InvalidInputError, match="passphrase is empty"):
        create_identity("ana", "", scrypt=CHEAP_SCRYPT)
    assert not (config / "identity.json").exists()


def test_missing_identity(config: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no identity at .*; run 'artifactstore identity "
                                            r"create'"):
        load_identity()
    with pytest.raises(NotFoundError):
        identity_info()


def test_file_and_folder_modes(config: Path) -> None:
    create_identity("ana")
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(config / "identity.json").st_mode) == 0o600
    assert [p.name for p in config.iterdir()] == ["identity.json"]  # no temp files left


def test_modes_hold_under_a_permissive_umask(config: Path) -> None:
    old = os.umask(0)
    try:
        create_identity("ana")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(config / "identity.json").st_mode) == 0o600


def test_repr_hides_private_keys() -> None:
    identity = create_identity("ana")
    text = repr(identity)
    assert "ana" in text
    assert identity.public.fingerprint in text
    for secret in (identity.x25519_private, identity.signing_key.private_bytes):
        assert secret.hex() not in text
        assert repr(secret) not in text
    assert "private" not in text


# -- replacing ---------------------------------------------------------------------------


def test_create_refuses_to_overwrite(config: Path) -> None:
    first = create_identity("ana")
    with pytest.raises(AlreadyExistsError, match="already exists; use --force to replace it "
                                                 r"\(the old identity's projects"):
        create_identity("bob")
    assert load_identity() == first
    assert identity_backups() == []


def test_force_replaces_and_keeps_a_backup(config: Path) -> None:
    first = create_identity("ana")
    old_bytes = (config / "identity.json").read_bytes()
    second = create_identity("bob", force=True)
    third = create_identity("cleo", force=True)  # same second: the backup name gets a suffix
    assert load_identity() == third != second
    backups = identity_backups()
    assert len(backups) == 2
    assert all(p.name.startswith("identity.json.bak-") for p in backups)
    assert backups[0].read_bytes() == old_bytes
    assert {load_identity(path=p) for p in backups} == {first, second}
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in backups)


def test_force_without_an_existing_identity(config: Path) -> None:
    create_identity("ana", force=True)
    assert identity_backups() == []
    assert load_identity().public.name == "ana"


def test_load_or_create(config: Path) -> None:
    created = load_or_create_identity()
    assert not created.protected
    assert load_or_create_identity() == created
    assert load_identity() == created


# -- damaged and tampered files ----------------------------------------------------------


def _edit(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_swapped_public_key_is_rejected(config: Path) -> None:
    create_identity("ana")
    mallory = x25519_keypair()[1].hex()
    _edit(config / "identity.json", lambda d: d.update(x25519_public=mallory))
    with pytest.raises(IntegrityError,
                       match=r"identity .*identity\.json is damaged: its private keys do "
                             r"not match its public keys"):
        load_identity()
    with pytest.raises(IntegrityError, match="do not match"):
        identity_info()  # what show would print to teammates


def test_swapped_signing_key_is_rejected_when_protected(config: Path) -> None:
    create_identity("ana", "pw", scrypt=CHEAP_SCRYPT)
    _edit(config / "identity.json", lambda d: d.update(ed25519_public="ab" * 32))
    with pytest.raises(IntegrityError, match="do not match"):
        load_identity("pw")


def test_altered_sealed_keys_do_not_open(config: Path) -> None:
    create_identity("ana", "pw", scrypt=CHEAP_SCRYPT)

    def flip(document: dict[str, Any]) -> None:
        sealed = bytearray.fromhex(document["private"]["sealed"])
        sealed[0] ^= 1
        document["private"]["sealed"] = sealed.hex()

    _edit(config / "identity.json", flip)
    with pytest.raises(AccessDeniedError, match="wrong passphrase"):
        load_identity("pw")


@pytest.mark.parametrize(
    ("change", "error", "expected"),
    [
        (lambda d: d.pop("name"), IntegrityError, "field 'name' is missing"),
        (lambda d: d.update(name=" x"), IntegrityError, "is damaged: identity name"),
        (lambda d: d.update(format="other"), IntegrityError, "not an artifactstore identity"),
        (lambda d: d.update(version=2), FormatError, "upgrade artifactstore"),
        (lambda d: d.update(version="1"), IntegrityError, "field 'version'"),
        (lambda d: d.update(x25519_public="zz"), IntegrityError, "not hex"),
        (lambda d: d.update(ed25519_public="ab"), IntegrityError, "32 bytes"),
        (lambda d: d["private"].update(kind="tpm"), FormatError, "'tpm'"),
        (lambda d: d["private"].update(keys="ab" * 63), IntegrityError, "not 64 bytes"),
        (lambda d: d.pop("private"), IntegrityError, "field 'private'"),
    ],
)
def test_damaged_fields(config: Path, change: Any, error: type[Exception],
                        expected: str) -> None:
    create_identity("ana")
    _edit(config / "identity.json", change)
    with pytest.raises(error, match=expected) as exc:
        load_identity()
    assert str(config / "identity.json") in str(exc.value)


def test_absurd_scrypt_cost_is_refused(config: Path) -> None:
    create_identity("ana", "pw", scrypt=CHEAP_SCRYPT)
    _edit(config / "identity.json", lambda d: d["private"].update(log_n=40))
    with pytest.raises(IntegrityError, match="scrypt parameters out of range"):
        load_identity("pw")


def test_not_json(config: Path) -> None:
    create_identity("ana")
    (config / "identity.json").write_text('{"format": "artifactstore-ident')
    with pytest.raises(IntegrityError, match="is damaged: it is not JSON"):
        load_identity()


# -- concurrent creators -----------------------------------------------------------------


def _create_worker(worker: int, barrier: Any, results: Any, path: str, force: bool) -> None:
    try:
        barrier.wait(60)
        try:
            identity = create_identity(f"worker-{worker}", path=Path(path), force=force)
        except AlreadyExistsError:
            results.put((worker, None, None))
            return
        results.put((worker, identity.public.fingerprint, None))
    except BaseException as exc:
        barrier.abort()
        results.put((worker, None, f"{type(exc).__name__}: {exc}"))


def test_racing_creators_exactly_one_wins(config: Path) -> None:
    path = config / "identity.json"
    outcomes = run_workers(_create_worker, (str(path), False), workers=8)
    assert len(outcomes) == 8
    winners = [fingerprint for fingerprint in outcomes.values() if fingerprint is not None]
    assert len(winners) == 1
    assert load_identity(path=path).public.fingerprint == winners[0]
    assert sorted(p.name for p in config.iterdir()) == ["identity.json"]


def test_racing_forced_creators_leave_one_whole_identity(config: Path) -> None:
    path = config / "identity.json"
    outcomes = run_workers(_create_worker, (str(path), True), workers=8)
    assert None not in outcomes.values()
    assert load_identity(path=path).public.fingerprint in set(outcomes.values())
    for backup in identity_backups(path=path):
        assert load_identity(path=backup).public.fingerprint in set(outcomes.values())
    assert not [p for p in config.iterdir() if ".tmp-" in p.name]
