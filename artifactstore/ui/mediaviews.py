"""What the media panels of a run page show, as plain data read through
:class:`artifactstore.Store` (docs/design.md §12.7 for the references).

Vocabulary:

- **panel**: the media logged under one key with one ``_type`` (a key that changes kind
  gets one panel per kind): the steps it was logged at, and per step the references of
  that step (several when the key was logged more than once at the step), each with the
  ``url`` of its bytes (file references; their masks get one too) or its values inline
  (histograms, short texts).
- **media URL**: ``<base>/runs/<run id>/media/<path>``, the path of a file in the run's
  media artifact, each segment percent-encoded; ``.../media/<digest>`` (the file's
  64-hex BLAKE3) names the same file.
- **resolving** a media URL: finding the reference the run's history (or a mask of it,
  or a cell of a table logged at the same key and step) holds for that path, so the file
  is read through ``Store.media`` with that reference: digest-checked, and served with
  the content type of the reference's ``format``, never one guessed from the name.

A resolved reference is kept (:class:`Resolved`): a path names its bytes by digest, so
its answer never changes; a miss looks again, since a live run keeps logging.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote

import artifactstore
from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.ui.views import plain

__all__ = ["KINDS", "Resolved", "content_type", "media_index", "media_url", "parse_range",
           "sandboxed"]

#: panel kinds in the order the page shows their groups
KINDS: Final = ("image", "plot", "video", "audio", "histogram", "table", "text", "html")
#: a file name of a media path: ``<step:012d>-<digest[:16]>.<ext>`` (design §12.7)
FILE_NAME: Final = re.compile(r"(\d{12})-([0-9a-f]{16})\.[a-z.]+")
DIGEST: Final = re.compile(r"[0-9a-f]{64}")
#: format -> content type; audio and video containers depend on the reference's kind
TYPES: Final = {
    "png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "svg": "image/svg+xml",
    "wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac",
    "html": "text/html; charset=utf-8", "txt": "text/plain; charset=utf-8",
    "json": "application/json", "vega-lite": "application/json",
}  # fmt: skip
CONTAINERS: Final = {"ogg": "ogg", "mp4": "mp4", "webm": "webm"}
#: formats a browser would run scripts of when opened as a page
ACTIVE: Final = frozenset({"html", "svg"})
#: references kept per app (paths and digests), oldest dropped first
KEEP: Final = 20_000


def content_type(reference: Mapping[str, Any]) -> str:
    """The Content-Type of the file ``reference`` names, from its ``format`` (and
    ``_type`` for containers of both sound and pictures); unknown formats are bytes."""
    fmt = str(reference.get("format", ""))
    if fmt in CONTAINERS:
        kind = "audio" if reference.get("_type") == "audio" else "video"
        return f"{kind}/{CONTAINERS[fmt]}"
    return TYPES.get(fmt, "application/octet-stream")


def sandboxed(reference: Mapping[str, Any]) -> bool:
    """Whether the file must be served in a CSP sandbox (HTML and SVG can hold scripts)."""
    return str(reference.get("format", "")) in ACTIVE


def media_url(base: str, run_id: str, path: str) -> str:
    """The URL of the bytes of media file ``path`` of run ``run_id`` (module docstring)."""
    return f"{base}/runs/{quote(run_id, safe='')}/media/{quote(path, safe='/')}"


def _shown(reference: Mapping[str, Any], base: str, run_id: str) -> dict[str, Any]:
    """A reference as the index gives it: JSON-safe, with the URL of its file (and of
    its masks' files)."""
    shown: dict[str, Any] = plain(dict(reference))
    if isinstance(reference.get("path"), str):
        shown["url"] = media_url(base, run_id, str(reference["path"]))
    masks = reference.get("masks")
    if isinstance(masks, Mapping):
        shown["masks"] = {
            str(name): {**plain(dict(mask)), "url": media_url(base, run_id, str(mask["path"]))}
            for name, mask in masks.items()
            if isinstance(mask, Mapping) and isinstance(mask.get("path"), str)
        }
    return shown


def media_index(store: artifactstore.Store, run_id: str, base: str) -> dict[str, Any]:
    """The panels of a run's media (module docstring), grouped by kind in :data:`KINDS`
    order, keys in the order first logged."""
    run = store.get_run(run_id)
    found: dict[tuple[str, str], dict[int, list[dict[str, Any]]]] = {}
    for entry in store.run_media(run.run_id):
        kind = str(entry.reference.get("_type"))
        steps = found.setdefault((entry.key, kind), {})
        steps.setdefault(entry.step, []).append(_shown(entry.reference, base, run.run_id))
    panels: list[dict[str, Any]] = [
        {"key": key, "kind": kind, "steps": sorted(steps),
         "at": [{"step": step, "refs": steps[step]} for step in sorted(steps)]}
        for (key, kind), steps in found.items()]  # steps may be logged out of order
    order = {kind: i for i, kind in enumerate(KINDS)}
    ordered = sorted(panels, key=lambda p: order.get(p["kind"], len(KINDS)))
    return {"run_id": run.run_id, "label": run.label, "status": run.status, "panels": ordered,
            "kinds": [k for k in KINDS if any(p["kind"] == k for p in ordered)]}


def _nested(reference: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The file references inside an image reference: its masks."""
    masks = reference.get("masks")
    if isinstance(masks, Mapping):
        yield from (m for m in masks.values() if isinstance(m, Mapping))


class Resolved:
    """The references media URLs have resolved to, per project and run (thread-safe)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._found: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def _get(self, project: str, run_id: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._found.get((project, run_id, name))
            if found is not None:
                self._found.move_to_end((project, run_id, name))
            return found

    def _put(self, project: str, run_id: str, reference: Mapping[str, Any]) -> None:
        with self._lock:
            for name in (str(reference["path"]), str(reference["digest"])):
                # the first found wins: the history's own reference before a table cell
                self._found.setdefault((project, run_id, name), dict(reference))
            while len(self._found) > self._keep:
                self._found.popitem(last=False)

    def _learn(self, project: str, run_id: str, references: Iterable[Mapping[str, Any]]
               ) -> None:
        for reference in references:
            if isinstance(reference.get("path"), str) and isinstance(reference.get("digest"),
                                                                      str):
                self._put(project, run_id, reference)

    def reference(self, store: artifactstore.Store, run_id: str, name: str
                  ) -> dict[str, Any]:
        """The reference media URL ``name`` (a path or a digest) stands for in the run
        (NotFoundError if none)."""
        run_id = store.get_run(run_id).run_id
        found = self._get(store.project, run_id, name)
        if found is not None:
            return found
        if DIGEST.fullmatch(name):
            entries = store.run_media(run_id)
        else:
            key, _, file_name = name.rpartition("/")
            match = FILE_NAME.fullmatch(file_name)
            if not key or match is None:
                raise NotFoundError(f"{name[:200]} is not the path of a media file "
                                    "(<key>/<step>-<digest>.<ext>) nor a digest")
            entries = store.run_media(run_id, key=key, step=int(match.group(1)))
        for entry in entries:
            self._learn(store.project, run_id, [entry.reference, *_nested(entry.reference)])
            if (entry.reference.get("_type") == "table"
                    and entry.reference.get("path") != name and not DIGEST.fullmatch(name)):
                # images in a table are files of the same key and step (design §12.7)
                table = store.media(run_id, entry.reference).table()
                cells = [c for row in table.rows for c in row if isinstance(c, Mapping)]
                self._learn(store.project, run_id, [*cells, *(m for c in cells
                                                              for m in _nested(c))])
        found = self._get(store.project, run_id, name)
        if found is None:
            raise NotFoundError(f"run {run_id} logged no media file {name[:200]}")
        return found


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range ``[start, end)`` of a ``Range: bytes=a-b`` header (one range, as
    media elements ask), None for the whole file; InvalidInputError if it cannot be
    satisfied."""
    if not header:
        return None
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # several ranges or a unit we do not serve: the whole file
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), size if last == "" else min(size, int(last) + 1)
    if start >= end:
        raise InvalidInputError(f"range {header[:60]} is outside the file's {size} bytes")
    return start, end
