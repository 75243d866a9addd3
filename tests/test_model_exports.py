"""The export manifest: JSON values, serialising and strict parsing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given

from artifactstore.core.errors import FormatError, InvalidInputError
from artifactstore.model.exports import (
    ExportedFile,
    ExportedInput,
    ExportedReference,
    ExportedRun,
    ExportManifest,
    from_json_value,
    parse_manifest,
    to_json_value,
)
from artifactstore.testing import strategies

H = "ab" * 32

MANIFEST = ExportManifest(
    project="default", name="dataset", number=3, type="dataset", description=None,
    metadata={"rows": 2, "blob": b"\x00", "deep": {"x": [1.5, None]}},
    created_at="2026-01-01T00:00:00.000000+00:00", created_by="ana@host", digest=H, size=12,
    aliases=("production",),
    files=(ExportedFile("a/b.csv", 7, H, 0o644, "text/csv"),
           ExportedFile("run.sh", 5, "cd" * 32, 0o755, "application/x-sh")),
    references=(ExportedReference("r.bin", "s3://bucket/r.bin", None, "etag", None, None,
                                  "application/octet-stream"),),
    run_id="20260101T000000000000Z-0a1b2c3d",
    run=ExportedRun(id="20260101T000000000000Z-0a1b2c3d", name=None, job_type="prepare",
                    tags=("nightly",), config={"lr": 0.1}, summary={"loss": 0.25},
                    code={"commit": "f" * 40, "branch": "main", "remote": None, "dirty": False},
                    status="finished", error=None, started_at="s", ended_at="e", by="ana@host",
                    inputs=(ExportedInput("raw:v0", "raw-data", H),
                            ExportedInput("gone:v2", None, None))),
    exported_at="2026-01-02T00:00:00.000000+00:00", exported_by="bo@host",
    generator="artifactstore 0.1.0",
)  # fmt: skip


def test_manifest_round_trips() -> None:
    assert parse_manifest(MANIFEST.to_bytes()) == MANIFEST
    assert MANIFEST.ref == "dataset:v3"
    assert MANIFEST.file_bytes == 12
    assert MANIFEST.run is not None
    assert [(i.artifact, i.number) for i in MANIFEST.run.inputs] == [("raw", 0), ("gone", 2)]


def test_manifest_bytes_are_standard_sorted_json() -> None:
    text = MANIFEST.to_bytes().decode("utf-8")
    value = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert list(value) == sorted(value)
    assert value["artifact"]["metadata"]["blob"] == {"$bytes": "AA=="}


json_values = strategies.json_values()


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


@given(json_values)
def test_json_values_round_trip_through_strict_json(value: Any) -> None:
    text = json.dumps(to_json_value(value), allow_nan=False)
    assert same(from_json_value(json.loads(text)), value)


@pytest.mark.parametrize("value", [{b"k": 1}, {"$bytes": "AA=="}, {"x": [{"$float": 1}]},
                                   {1, 2}])
def test_values_json_cannot_carry_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        to_json_value(value)


def manifest_with(change: Any) -> bytes:
    value = json.loads(MANIFEST.to_bytes())
    change(value)
    return json.dumps(value).encode()


def set_path(keys: list[Any], new: Any) -> Any:
    def change(value: Any) -> None:
        for key in keys[:-1]:
            value = value[key]
        value[keys[-1]] = new
    return change


def delete(keys: list[Any]) -> Any:
    def change(value: Any) -> None:
        for key in keys[:-1]:
            value = value[key]
        del value[keys[-1]]
    return change


@pytest.mark.parametrize("change", [
    set_path(["files", 0, "path"], "../x"),
    set_path(["files", 0, "path"], "/abs"),
    set_path(["files", 1, "path"], "a/b.csv"),  # twice
    set_path(["files", 1, "path"], "a/b.csv/c"),  # a file and a folder
    set_path(["references", 0, "path"], "a"),  # a folder of a file, and a reference
    set_path(["files", 0, "size"], -1),
    set_path(["files", 0, "size"], True),
    set_path(["files", 0, "size"], 1.0),
    set_path(["files", 0, "blake3"], "AB" * 32),
    set_path(["files", 0, "blake3"], "ab" * 31),
    set_path(["files", 0, "mode"], 0o1777),
    set_path(["references", 0, "uri"], "no-scheme"),
    set_path(["artifact", "name"], "bad name"),
    set_path(["artifact", "type"], " "),
    set_path(["artifact", "metadata"], [1]),
    set_path(["artifact", "metadata", "x"], {"$bytes": "***"}),
    set_path(["lineage", "run", "inputs", 0, "ref"], "raw:latest"),
    set_path(["lineage", "run", "code", "dirty"], "yes"),
    set_path(["format"], "something-else"),
    delete(["artifact", "digest"]),
    delete(["files"]),
])
def test_malformed_manifests_are_invalid_input(change: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_manifest(manifest_with(change))
    assert info.value.exit_code == 2


@pytest.mark.parametrize("text", [
    b'{"format": "artifactstore-export", "format": "artifactstore-export"}',
    b'{"format": "artifactstore-export", "x": NaN}',
    b"\xff\xfe",
    b"[]",
])
def test_non_json_duplicates_and_non_objects_are_refused(text: bytes) -> None:
    with pytest.raises(InvalidInputError):
        parse_manifest(text)


def test_newer_format_version_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="upgrade"):
        parse_manifest(manifest_with(set_path(["format_version"], 2)))


def test_unknown_keys_are_ignored() -> None:
    def add(value: Any) -> None:
        value["later"] = {"anything": 1}
        value["files"][0]["xattrs"] = {}
    assert parse_manifest(manifest_with(add)) == MANIFEST
