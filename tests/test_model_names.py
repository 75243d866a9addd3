"""Names of projects, artifacts and aliases; refs and version labels."""

from __future__ import annotations

import pytest
from artifactstore.core.errors import InvalidInputError

from artifactstore.model.names import (
    MAX_VERSION,
    parse_ref,
    parse_version_label,
    validate_alias,
    validate_artifact_name,
    validate_project_name,
    validate_selector,
    version_label,
)

GOOD_NAMES = ["a", "A", "0", "model", "my-model_v2.1", "x" * 128, "3d-scans", "a..b", "a-", "v3"]
BAD_NAMES = [
    "", "-x", ".x", "_x", "a b", "a/b", "a:b", "a\\b", "x" * 129, "..", ".", "caf\u00e9",
    "a\x00", "a\n", " a", "a*",
]  # fmt: skip


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names(name: str) -> None:
    assert validate_artifact_name(name) == name
    assert validate_project_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_artifact_name(name)
    message = str(info.value)
    assert "\n" not in message
    assert "artifact name" in message
    assert repr(name)[:40] in message or len(repr(name)) > 60
    assert "for example" in message
    with pytest.raises(InvalidInputError, match="project name"):
        validate_project_name(name)


def test_names_must_be_str() -> None:
    with pytest.raises(InvalidInputError):
        validate_artifact_name(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "alias", ["prod", "staging", "best-2024", "v", "v3a", "vx", "V3", "x" * 128]
)
def test_good_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "reason"),
    [
        ("v3", "reserved for version"),
        ("v0", "reserved for version"),
        ("v007", "reserved for version"),
        ("latest", "newest version"),
        ("-x", "1-128"),
        ("", "1-128"),
        ("a b", "1-128"),
        ("x" * 129, "1-128"),
        ("a:b", "1-128"),
    ],
)
def test_bad_aliases(alias: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as info:
        validate_alias(alias)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("model", ("model", "latest")),
        ("model:latest", ("model", "latest")),
        ("model:v0", ("model", "v0")),
        ("model:v3", ("model", "v3")),
        ("model:v12", ("model", "v12")),
        ("model:prod", ("model", "prod")),
        ("a.b-c_d:best-1", ("a.b-c_d", "best-1")),
    ],
)
def test_parse_ref(ref: str, expected: tuple[str, str]) -> None:
    assert parse_ref(ref) == expected


@pytest.mark.parametrize(
    "ref",
    ["", ":", "a:b:c", "model:", ":v3", "-m:v3", "model:v03", "model:a b", "a b", "m:v99999999999"],
)
def test_parse_ref_refuses(ref: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_ref(ref)
    assert "\n" not in str(info.value)


def test_parse_ref_message_names_the_problem() -> None:
    with pytest.raises(InvalidInputError, match=r"at most one ':'"):
        parse_ref("a:b:c")
    with pytest.raises(InvalidInputError, match="leading zeros"):
        parse_ref("model:v03")
    with pytest.raises(InvalidInputError, match="for example 'model:v3'"):
        parse_ref("")


def test_validate_selector() -> None:
    assert validate_selector("latest") == "latest"
    assert validate_selector("v3") == "v3"
    assert validate_selector("prod") == "prod"
    with pytest.raises(InvalidInputError):
        validate_selector("v03")


@pytest.mark.parametrize(("number", "label"), [(0, "v0"), (3, "v3"), (41, "v41")])
def test_version_labels_round_trip(number: int, label: str) -> None:
    assert version_label(number) == label
    assert parse_version_label(label) == number


@pytest.mark.parametrize(
    "label", ["", "v", "3", "V3", "v03", "v-1", "v3a", "latest", "v 3", "v1e3"]
)
def test_parse_version_label_rejects(label: str) -> None:
    assert parse_version_label(label) is None


def test_version_label_range() -> None:
    assert version_label(MAX_VERSION) == f"v{MAX_VERSION}"
    assert parse_version_label(f"v{MAX_VERSION + 1}") is None
    for bad in (-1, MAX_VERSION + 1, True, 1.0):
        with pytest.raises(InvalidInputError):
            version_label(bad)  # type: ignore[arg-type]
