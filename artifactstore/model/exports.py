"""The portable export manifest (docs/export-format.md): what an export holds, as JSON.

Vocabulary:

- an **export** is one artifact version outside any store: a folder (or a tar
  file of the same layout) holding ``artifactstore-export.json`` (the
  **manifest**) and the version's files under ``files/``;
- the manifest names the version (artifact, number, type, description,
  metadata, ...), every **file** (path, size, plain BLAKE3, mode), every
  **reference** (an entry whose bytes live elsewhere; listed, never copied) and
  the version's **lineage**: the run that produced it and that run's inputs;
- a **JSON value** is metadata, config or summary as JSON: msgpack values JSON
  has no form for are written as one-key objects, ``{"$bytes": base64}`` and
  ``{"$float": "NaN" | "Infinity" | "-Infinity"}``, so they come back exactly.

Reading is strict, as for any untrusted input: unknown format or version,
missing or mistyped fields, unsafe or duplicate paths, and duplicate JSON keys
are refused before anything is read from ``files/``. Unknown keys are ignored,
so a later minor addition does not break this reader.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from artifactstore.core.errors import FormatError, InvalidInputError
from artifactstore.model.names import parse_version_label, validate_artifact_name
from artifactstore.model.paths import validate_path
from artifactstore.model.tree import path_key

__all__ = [
    "FILES_DIR", "FORMAT", "FORMAT_VERSION", "MANIFEST_NAME", "ExportManifest", "ExportedFile",
    "ExportedInput", "ExportedReference", "ExportedRun", "from_json_value", "parse_manifest",
    "to_json_value",
]  # fmt: skip

FORMAT: Final = "artifactstore-export"
FORMAT_VERSION: Final = 1
MANIFEST_NAME: Final = "artifactstore-export.json"
FILES_DIR: Final = "files"

_TAGS: Final = ("$bytes", "$float")
_FLOATS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_HEX: Final = frozenset("0123456789abcdef")


# -- JSON values --------------------------------------------------------------------------


def to_json_value(value: Any, where: str = "$") -> Any:
    """``value`` (a decoded msgpack value) as JSON; see the module docstring."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return [to_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        if any(not isinstance(k, str) for k in value):
            raise InvalidInputError(
                f"{where} is a map with bytes keys, which JSON cannot hold; "
                "use str keys to export it"
            )
        if len(value) == 1 and next(iter(value)) in _TAGS:
            # Why: it would read back as bytes or a float, not as this map.
            raise InvalidInputError(
                f"{where} is a map whose only key is {next(iter(value))!r}, which the export "
                "format reserves; rename the key to export it"
            )
        return {k: to_json_value(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise InvalidInputError(f"{where} is a {type(value).__name__}, which cannot be exported")


def from_json_value(value: Any, where: str = "$") -> Any:
    """The msgpack value a JSON value stands for (the inverse of :func:`to_json_value`)."""
    if isinstance(value, list):
        return [from_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in _TAGS:
        tag, text = next(iter(value.items()))
        if tag == "$float" and text in _FLOATS:
            return _FLOATS[text]
        if tag == "$bytes" and isinstance(text, str):
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                pass
        raise InvalidInputError(f"manifest value {where} is not a valid {tag} value")
    return {k: from_json_value(v, f"{where}[{k!r}]") for k, v in value.items()}


# -- the manifest -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """A file under ``files/<path>``: its size, plain BLAKE3 (hex, as ``b3sum`` prints) and mode."""

    path: str
    size: int
    blake3: str
    mode: int
    media_type: str

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "blake3": self.blake3, "mode": self.mode,
                "media_type": self.media_type}


@dataclass(frozen=True, slots=True)
class ExportedReference:
    """An entry whose bytes stay at ``uri``; not in ``files/``."""

    path: str
    uri: str
    size: int | None
    etag: str | None
    version_id: str | None
    blake3: str | None
    media_type: str

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "uri": self.uri, "size": self.size, "etag": self.etag,
                "version_id": self.version_id, "blake3": self.blake3,
                "media_type": self.media_type}


@dataclass(frozen=True, slots=True)
class ExportedInput:
    """A version the producing run used, as the source store knew it."""

    ref: str  # "name:vN"
    type: str | None  # None when the source store no longer holds its record
    digest: str | None  # content digest (hex), None likewise

    @property
    def artifact(self) -> str:
        return self.ref.rpartition(":")[0]

    @property
    def number(self) -> int:
        number = parse_version_label(self.ref.rpartition(":")[2])
        assert number is not None  # checked when built or parsed
        return number

    def as_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "artifact": self.artifact, "version": self.number,
                "type": self.type, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class ExportedRun:
    """The run that produced the version, as its source store recorded it."""

    id: str
    name: str | None
    job_type: str | None
    tags: tuple[str, ...]
    config: dict[str, Any] = field(hash=False)
    summary: dict[str, Any] = field(hash=False)
    code: dict[str, Any] | None = field(hash=False)
    status: str
    error: str | None
    started_at: str
    ended_at: str | None
    by: str
    inputs: tuple[ExportedInput, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "job_type": self.job_type,
            "tags": list(self.tags), "config": to_json_value(self.config, "$.config"),
            "summary": to_json_value(self.summary, "$.summary"),
            "code": to_json_value(self.code, "$.code"), "status": self.status,
            "error": self.error, "started_at": self.started_at, "ended_at": self.ended_at,
            "by": self.by, "inputs": [i.as_json() for i in self.inputs],
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExportManifest:
    """Everything ``artifactstore-export.json`` says; built by the exporter or parsed."""

    project: str
    name: str
    number: int
    type: str
    description: str | None
    metadata: dict[str, Any] = field(hash=False)
    created_at: str
    created_by: str
    digest: str
    size: int
    aliases: tuple[str, ...]
    files: tuple[ExportedFile, ...]
    references: tuple[ExportedReference, ...]
    run_id: str | None  # the run the version record names, even if it could not be read
    run: ExportedRun | None
    exported_at: str
    exported_by: str
    generator: str

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.number}"

    @property
    def file_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "exported_at": self.exported_at,
            "exported_by": self.exported_by,
            "generator": self.generator,
            "artifact": {
                "project": self.project, "name": self.name, "version": self.number,
                "ref": self.ref, "type": self.type, "description": self.description,
                "metadata": to_json_value(self.metadata, "$.metadata"),
                "created_at": self.created_at, "created_by": self.created_by,
                "digest": self.digest, "size": self.size, "aliases": list(self.aliases),
            },
            "files": [f.as_json() for f in self.files],
            "references": [r.as_json() for r in self.references],
            "lineage": {"run_id": self.run_id,
                        "run": None if self.run is None else self.run.as_json()},
        }  # fmt: skip

    def to_bytes(self) -> bytes:
        """The manifest file: UTF-8 JSON, standard (no NaN literals), keys sorted."""
        text = json.dumps(self.as_json(), indent=2, sort_keys=True, ensure_ascii=False,
                          allow_nan=False)
        return (text + "\n").encode("utf-8")


# -- parsing ------------------------------------------------------------------------------


class _Object:
    """Typed access to one JSON object of the manifest; errors name the field."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _bad(where, "an object")
        self._value = value
        self._where = where

    def _get(self, key: str, kinds: tuple[type, ...], what: str, optional: bool) -> Any:
        value = self._value.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise _bad(f"{self._where}.{key}", what)
        return value

    def text(self, key: str) -> str:
        result: str = self._get(key, (str,), "a string", False)
        return result

    def opt_text(self, key: str) -> str | None:
        result: str | None = self._get(key, (str,), "a string or null", True)
        return result

    def count(self, key: str, *, optional: bool = False) -> int | None:
        value = self._get(key, (int,), "an integer >= 0", optional)
        if value is not None and value < 0:
            raise _bad(f"{self._where}.{key}", "an integer >= 0")
        result: int | None = value
        return result

    def size(self, key: str) -> int:
        value = self.count(key)
        assert value is not None
        return value

    def digest(self, key: str, *, optional: bool = False) -> str | None:
        value = self._get(key, (str,), "64 lowercase hex digits", optional)
        if value is not None and (len(value) != 64 or not set(value) <= _HEX):
            raise _bad(f"{self._where}.{key}", "64 lowercase hex digits")
        result: str | None = value
        return result

    def mapping(self, key: str, *, optional: bool = False) -> dict[str, Any] | None:
        value = self._get(key, (dict,), "an object", optional)
        return None if value is None else from_json_value(value, f"{self._where}.{key}")

    def objects(self, key: str) -> list[_Object]:
        items = self._get(key, (list,), "a list", False)
        return [_Object(item, f"{self._where}.{key}[{i}]") for i, item in enumerate(items)]

    def texts(self, key: str) -> tuple[str, ...]:
        items = self._get(key, (list,), "a list of strings", False)
        if any(not isinstance(item, str) for item in items):
            raise _bad(f"{self._where}.{key}", "a list of strings")
        return tuple(items)

    def child(self, key: str) -> _Object:
        return _Object(self._get(key, (dict,), "an object", False), f"{self._where}.{key}")

    def opt_child(self, key: str) -> _Object | None:
        value = self._get(key, (dict,), "an object or null", True)
        return None if value is None else _Object(value, f"{self._where}.{key}")


def _bad(where: str, expected: str) -> InvalidInputError:
    return InvalidInputError(
        f"export manifest field {where} must be {expected}; the export is damaged or was "
        "not written by artifactstore: export it again"
    )


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Why: two parsers could each pick a different value of a repeated key.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidInputError(f"export manifest repeats the key {key!r}: export it again")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise InvalidInputError(f"export manifest holds {name}, which is not JSON: export it again")


def parse_manifest(data: bytes) -> ExportManifest:
    """Read and check ``artifactstore-export.json``; see the module docstring."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_refuse_duplicates,
                           parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"{MANIFEST_NAME} is not UTF-8 JSON ({exc}); the export is damaged: export it again"
        ) from None
    top = _Object(value, "$")
    if value.get("format") != FORMAT:
        raise InvalidInputError(
            f"{MANIFEST_NAME} does not describe an artifactstore export "
            f"(format {value.get('format')!r:.40}, expected {FORMAT!r})"
        )
    version = top.count("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"export format version {version} is not one this artifactstore reads "
            f"({FORMAT_VERSION}); upgrade artifactstore to import it"
        )
    art = top.child("artifact")
    lineage = top.child("lineage")
    files = tuple(_file(o) for o in top.objects("files"))
    references = tuple(_reference(o) for o in top.objects("references"))
    _check_paths([f.path for f in files] + [r.path for r in references])
    run = lineage.opt_child("run")
    return ExportManifest(
        project=art.text("project"),
        name=validate_artifact_name(art.text("name")),
        number=art.size("version"),
        type=_type(art.text("type")),
        description=art.opt_text("description"),
        metadata=art.mapping("metadata") or {},
        created_at=art.text("created_at"),
        created_by=art.text("created_by"),
        digest=art.digest("digest") or "",
        size=art.size("size"),
        aliases=art.texts("aliases"),
        files=files,
        references=references,
        run_id=lineage.opt_text("run_id"),
        run=None if run is None else _run(run),
        exported_at=top.text("exported_at"),
        exported_by=top.text("exported_by"),
        generator=top.text("generator"),
    )


def _type(value: str) -> str:
    if not value.strip():
        raise _bad("$.artifact.type", "a non-empty string")
    return value


def _file(o: _Object) -> ExportedFile:
    mode = o.size("mode")
    if mode > 0o777:
        raise _bad(f"{o._where}.mode", "permission bits, 0 to 511 (0o777)")
    return ExportedFile(path=validate_path(o.text("path")), size=o.size("size"),
                        blake3=o.digest("blake3") or "", mode=mode,
                        media_type=o.text("media_type"))


def _reference(o: _Object) -> ExportedReference:
    uri = o.text("uri")
    if "://" not in uri:
        raise _bad(f"{o._where}.uri", "a URI (s3://, gs://, https://, file://)")
    return ExportedReference(
        path=validate_path(o.text("path")), uri=uri, size=o.count("size", optional=True),
        etag=o.opt_text("etag"), version_id=o.opt_text("version_id"),
        blake3=o.digest("blake3", optional=True), media_type=o.text("media_type"),
    )


def _run(o: _Object) -> ExportedRun:
    inputs = []
    for item in o.objects("inputs"):
        ref = item.text("ref")
        name, _, label = ref.rpartition(":")
        if parse_version_label(label) is None:
            raise _bad(f"{item._where}.ref", "a version ref, name:vN")
        validate_artifact_name(name)
        inputs.append(ExportedInput(ref=ref, type=item.opt_text("type"),
                                    digest=item.digest("digest", optional=True)))
    code = o.mapping("code", optional=True)
    if code is not None:  # what codestate.CodeState.from_record accepts
        for key, kind in (("commit", str), ("branch", str), ("remote", str), ("dirty", bool)):
            if code.get(key) is not None and type(code[key]) is not kind:
                raise _bad(f"{o._where}.code.{key}", f"a {kind.__name__} or null")
    return ExportedRun(
        id=o.text("id"), name=o.opt_text("name"), job_type=o.opt_text("job_type"),
        tags=o.texts("tags"), config=o.mapping("config") or {},
        summary=o.mapping("summary") or {}, code=code,
        status=o.text("status"), error=o.opt_text("error"), started_at=o.text("started_at"),
        ended_at=o.opt_text("ended_at"), by=o.text("by"), inputs=tuple(inputs),
    )


def _check_paths(paths: list[str]) -> None:
    """No path twice, none both a file and a folder (``a`` and ``a/b``)."""
    keyed = sorted(path_key(p) for p in paths)
    for before, after in itertools.pairwise(keyed):
        if after[: len(before)] == before:
            what = "twice" if after == before else "as a file and as a folder"
            raise InvalidInputError(
                f"export manifest lists {'/'.join(before)!r} {what}; export it again"
            )
