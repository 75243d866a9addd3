"""What the artifact pages of the web UI show, as plain data read through
:class:`artifactstore.Store`.

Vocabulary:

- **ref**: ``name:vN`` or ``name:<alias>`` (``latest`` included); a page URL writes it
  ``/artifacts/<name>/<selector>``, the selector being ``vN`` or the alias.
- **state** of a version: ``live``, ``deleted``, ``purged`` or ``missing``
  (:mod:`artifactstore.repository.listing`).
- **listing** of a version: the files and folders right inside one folder, a page of
  at most :data:`PAGE_SIZE` items at a time, so a version of a million files is shown a
  folder and a page at a time and never read whole.
- **preview**: what a file shows on its version's page: an image (the page loads it
  from the file endpoint), the first :data:`TEXT_BYTES` of a text file (escaped by the
  template), or the first :data:`TABLE_ROWS` rows of a CSV/TSV file (of a Parquet file
  when pyarrow is installed).

Every function here is pure over the store's answers; :mod:`.artifactpages` serves them.
"""

from __future__ import annotations

import csv
import importlib
import io
import itertools
import json
from typing import Any, Final
from urllib.parse import quote

import artifactstore
from artifactstore.core.errors import ArtifactStoreError, InvalidInputError, NotFoundError
from artifactstore.runs.mediastage import MEDIA_TYPE
from artifactstore.ui.views import plain

__all__ = ["PAGE_SIZE", "TABLE_ROWS", "TEXT_BYTES", "artifact_page", "artifacts_list",
           "diff_page", "preview_kind", "version_page"]

PAGE_SIZE: Final = 200
TEXT_BYTES: Final = 64 << 10
TABLE_ROWS: Final = 50
#: previews a version page shows without being asked (each reads up to TEXT_BYTES)
AUTO_PREVIEWS: Final = 6
IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
TEXT_SUFFIXES: Final = frozenset({".txt", ".md", ".json", ".jsonl", ".log", ".yaml", ".yml",
                                  ".py", ".toml", ".ini", ".cfg", ".xml", ".rst"})
TABLE_SUFFIXES: Final = frozenset({".csv", ".tsv", ".parquet"})


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def preview_kind(path: str) -> str | None:
    """``image``, ``text``, ``table`` or None (no preview) for a file path."""
    suffix = _suffix(path)
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in TABLE_SUFFIXES:
        return "table"
    return None


def _short(digest: str | None) -> str | None:
    return digest[:12] if digest else None


def _digest(record: Any) -> str:
    return str((record.content or record.digest).hex)


def artifacts_list(store: artifactstore.Store, *, deleted: bool = False,
                   media: bool = False) -> dict[str, Any]:
    """Every artifact: type, number of versions (live and all), its newest live version
    with that version's aliases, size and time; artifacts with no live version only
    with ``deleted`` (then marked), the media artifacts of runs (``media-<run id>``, shown
    on their run's page) only with ``media``."""
    grouped: dict[str, list[Any]] = {}
    for state in store.version_states():
        grouped.setdefault(state.record.artifact, []).append(state)
    rows = []
    hidden = hidden_media = 0
    for name, states in sorted(grouped.items()):
        if states[-1].record.type == MEDIA_TYPE and not media:
            hidden_media += 1
            continue
        live = [s for s in states if s.state == "live"]
        if not live and not deleted:
            hidden += 1
            continue
        newest = (live or states)[-1]
        record = newest.record
        rows.append({"name": name, "type": record.type, "versions": len(live),
                     "all_versions": len(states), "newest": record.label,
                     "aliases": list(newest.aliases), "size": record.size,
                     "created": record.created_at, "deleted": not live})
    return {"artifacts": rows, "show_deleted": deleted, "hidden": hidden,
            "show_media": media, "hidden_media": hidden_media}


def artifact_page(store: artifactstore.Store, name: str) -> dict[str, Any]:
    """One artifact: every version (deleted and purged ones marked) and every alias with
    its history, oldest event first."""
    states = store.version_states(name)
    if not states:
        raise NotFoundError(f"no artifact {name!r:.80} in project {store.project!r}: "
                            "see the artifacts page")
    labels = {r.run_id: r.label for r in store.runs(include_deleted=True)}
    versions = []
    for s in states:
        r = s.record
        event = s.event
        versions.append({
            "number": r.number, "label": r.label, "digest": _digest(r),
            "short": _short(_digest(r)), "created": r.created_at, "by": r.created_by,
            "size": r.size, "files": r.files, "aliases": list(s.aliases), "run": r.run,
            "run_label": labels.get(r.run, r.run[:12]) if r.run else None,
            "state": s.state, "state_at": event.at if event else None,
            "state_by": event.by if event else None,
            "state_reason": event.reason if event else None})
    aliases: dict[str, list[dict[str, Any]]] = {}
    for e in store.alias_events(name):
        aliases.setdefault(e.alias, []).append({
            "seq": e.seq, "target": e.target, "previous": e.previous,
            "protected": e.protected, "at": e.at, "by": e.by, "forced": e.forced})
    return {"name": name, "type": states[-1].record.type, "versions": versions,
            "aliases": aliases,
            "live": [v["label"] for v in versions if v["state"] == "live"]}


def _item(entry: Any) -> dict[str, Any]:
    """An item of ``ArtifactVersion.folder_listing`` (a folder: it has totals, ``files``; a
    file or a reference: its ``kind``) or an entry (a stored file has ``chunks``)."""
    path = entry.path
    if hasattr(entry, "files"):
        return {"path": path, "name": path.rsplit("/", 1)[-1], "kind": "folder",
                "size": entry.size, "files": entry.files}
    kind = getattr(entry, "kind", None) or ("file" if hasattr(entry, "chunks") else "reference")
    return {"path": path, "name": path.rsplit("/", 1)[-1], "kind": kind, "size": entry.size,
            "preview": preview_kind(path) if kind == "file" else None}


def _text(version: Any, path: str) -> dict[str, Any]:
    with version.open(path) as f:
        data = f.read(TEXT_BYTES + 1)
    cut = len(data) > TEXT_BYTES
    return {"text": data[:TEXT_BYTES].decode("utf-8", errors="replace"), "truncated": cut}


def _table(version: Any, path: str) -> dict[str, Any]:
    if _suffix(path) == ".parquet":
        return _parquet(version, path)
    with version.open(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter="\t" if _suffix(path) == ".tsv" else ",")
        rows = list(itertools.islice(reader, TABLE_ROWS + 2))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    return {"columns": header, "rows": body[:TABLE_ROWS], "truncated": len(body) > TABLE_ROWS}


def _parquet(version: Any, path: str) -> dict[str, Any]:
    try:  # optional: pyarrow is no dependency of ours
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError:
        return {"unavailable": "install pyarrow to preview Parquet files"}
    with version.open(path) as f:
        parquet = pq.ParquetFile(f)
        batch = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
        total = parquet.metadata.num_rows
        names = list(parquet.schema_arrow.names)
        rows = [] if batch is None else [
            [plain(v) for v in row.values()] for row in batch.to_pylist()]
    return {"columns": names, "rows": rows, "truncated": total > len(rows)}


def _preview(version: Any, item: dict[str, Any], files_url: str) -> dict[str, Any]:
    kind = item["preview"]
    found: dict[str, Any] = {"path": item["path"], "kind": kind, "size": item["size"],
                             "url": files_url + _quote_path(item["path"])}
    try:
        if kind == "text":
            found.update(_text(version, item["path"]))
        elif kind == "table":
            found.update(_table(version, item["path"]))
    except (ArtifactStoreError, ValueError, OSError) as exc:  # a bad file, not a bad page
        found["unavailable"] = " ".join(str(exc).split())[:300]
    return found


def _quote_path(path: str) -> str:
    return quote(path, safe="/")


def _run_link(store: artifactstore.Store, run_id: str) -> dict[str, Any]:
    try:
        run = store.get_run(run_id)
    except ArtifactStoreError:
        return {"id": run_id, "label": run_id[:12], "status": None}
    return {"id": run.run_id, "label": run.label, "status": run.status}


def _used_by(store: artifactstore.Store, ref: str) -> list[str]:
    node = store.lineage_node(ref)
    graph = store.downstream(node, 1, sync=False)
    return sorted(n[len("run:"):] for n in graph.successors(node) if n.startswith("run:"))


def version_page(store: artifactstore.Store, name: str, selector: str, *,
                 folder: str = "", offset: int = 0, preview: str | None = None,
                 base: str = "") -> dict[str, Any]:
    """One version: its facts, the run that made it and the runs that used it, one page
    of one folder's listing, and previews (of ``preview``, else of the first few
    previewable files of the page)."""
    if offset < 0:
        raise InvalidInputError(f"offset is a count of items from 0, not {offset}")
    version = store.artifact(f"{name}:{selector}")
    folder = folder.strip("/")
    listing = version.folder_listing(folder)  # records only: no chunk list of a huge file
    items = [_item(e) for e in itertools.islice(listing, offset, offset + PAGE_SIZE + 1)]
    more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    page_url = f"{base}/artifacts/{name}/{version.version}"
    files_url = page_url + "/files/"
    if preview is not None:
        wanted = [_item(version.entry(preview))]
        if wanted[0]["preview"] is None:
            raise InvalidInputError(f"{preview!r:.80} has no preview: download it instead")
    else:
        wanted = [i for i in items if i.get("preview")][:AUTO_PREVIEWS]
    parts = folder.split("/") if folder else []
    record = version.record
    return {
        "ref": version.ref, "name": name, "label": version.version, "number": version.number,
        "selector": selector, "type": version.type, "digest": version.digest,
        "size": version.size, "file_count": record.files, "created": version.created_at,
        "by": version.created_by, "description": version.description,
        "metadata": plain(dict(version.metadata)), "aliases": version.aliases,
        "metadata_text": json.dumps(plain(dict(version.metadata)), indent=2, sort_keys=True,
                                    ensure_ascii=False),
        "made_by": None if record.run is None else _run_link(store, record.run),
        "used_by": [_run_link(store, r) for r in _used_by(store, version.ref)],
        "folder": folder,
        "crumbs": [{"name": p, "path": "/".join(parts[:i + 1])} for i, p in enumerate(parts)],
        "items": items, "offset": offset, "page_size": PAGE_SIZE,
        "next_offset": offset + PAGE_SIZE if more else None,
        "previews": [_preview(version, i, files_url) for i in wanted],
        "page_url": page_url, "files_url": files_url,
    }


def _size(entry: Any) -> int | None:
    return None if entry is None else entry.size


def diff_page(store: artifactstore.Store, a: str | None, b: str | None) -> dict[str, Any]:
    """What changed from version ``a`` to version ``b``: added, removed and changed
    files with their sizes (as ``artifactstore diff``)."""
    if not a or not b:
        raise InvalidInputError("name the two versions to compare: ?a=name:vN&b=name:vM")
    old, new = store.artifact(a), store.artifact(b)
    changes = [{"path": c.path, "change": c.kind, "old_size": _size(c.old),
                "new_size": _size(c.new)} for c in new.diff(old)]
    counts = {k: sum(c["change"] == k for c in changes) for k in ("added", "removed", "modified")}
    return {"a": old.ref, "b": new.ref, "a_name": old.name, "a_label": old.version,
            "b_name": new.name, "b_label": new.version, "changes": changes, "counts": counts}

