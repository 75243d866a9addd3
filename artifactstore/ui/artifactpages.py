"""The artifact pages of the web UI (what they show: :mod:`.artifactviews`):

- ``/p/<project>/artifacts``: every artifact (``?deleted=1`` adds those with no live
  version, marked);
- ``/p/<project>/artifacts/<name>``: its versions and its aliases' history;
- ``/p/<project>/artifacts/<name>/<selector>`` (``vN``, ``latest`` or an alias): one
  version, a page of one folder (``?folder=a/b&offset=200``) and previews
  (``?preview=<path>`` for one file);
- ``/p/<project>/artifacts/<name>/<selector>/files/<path>``: the bytes of one file;
- ``/p/<project>/diff?a=<ref>&b=<ref>``: what changed between two versions.

The file endpoint streams the file through :meth:`ArtifactVersion.open` (a chunk read
at a time, under the read lock, never the whole file in memory) and answers one
``Range: bytes=a-b`` with 206 (416 outside the file). Why the headers: a stored file is
hostile content served from our own origin, so only a short list of suffixes gets a
type a browser shows
(images, plain text, CSV); everything else is ``application/octet-stream`` with
``Content-Disposition: attachment``, and SVG and HTML, which can carry script, also
get the sandbox policy of :data:`.web.SANDBOXED_FILE` (a unique origin, no script,
nothing loaded). The path is checked by the library (no ``..``, no
absolute path, no NUL: 400) and is only ever looked up in the version's tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

import artifactstore
from artifactstore.core.errors import ArtifactStoreError, InvalidInputError
from artifactstore.ui import artifactviews
from artifactstore.ui.web import SANDBOXED_FILE, Site, arg, project_base

__all__ = ["CONTENT_TYPES", "routes"]

#: suffix -> Content-Type of the files a browser may show inline (all others download)
CONTENT_TYPES: Final = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8", ".json": "text/plain; charset=utf-8",
    ".jsonl": "text/plain; charset=utf-8", ".yaml": "text/plain; charset=utf-8",
    ".yml": "text/plain; charset=utf-8", ".py": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8", ".tsv": "text/tab-separated-values; charset=utf-8",
    ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".mp4": "video/mp4", ".webm": "video/webm",
}
#: shown inline but able to run script: sandboxed
SANDBOXED: Final = frozenset({".svg", ".html", ".htm"})
CHUNK: Final = 1 << 20
_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")


def _offset(request: Request) -> int:
    given = arg(request, "offset") or "0"
    if not given.isdigit():
        raise InvalidInputError(f"offset is a count of items from 0, not {given!r:.40}")
    return int(given)


def artifacts_list(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    return artifactviews.artifacts_list(store, deleted=arg(request, "deleted") in ("1", "true"),
                                        media=arg(request, "media") in ("1", "true"))


def artifact_page(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    return artifactviews.artifact_page(store, request.path_params["name"])


def version_page(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    return artifactviews.version_page(
        store, request.path_params["name"], request.path_params["selector"],
        folder=arg(request, "folder") or "", offset=_offset(request),
        preview=arg(request, "preview"), base=project_base(store.project))


def diff_page(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    return artifactviews.diff_page(store, arg(request, "a"), arg(request, "b"))


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


class _Unsatisfiable(Exception):
    """A range outside the file: 416 (RFC 9110 §15.5.17)."""


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single ``bytes=`` range, None for the whole
    file; _Unsatisfiable for a range outside the file."""
    if header is None:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None:
        return None  # several ranges, or another unit: the whole file (RFC 9110 allows)
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), size if not last else min(size, int(last) + 1)
    if start >= size or start >= end:
        raise _Unsatisfiable
    return start, end


def _headers(path: str) -> tuple[str, dict[str, str]]:
    suffix = _suffix(path)
    kind = CONTENT_TYPES.get(suffix)
    name = quote(path.rsplit("/", 1)[-1], safe="")
    headers = {"Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff"}
    if kind is None:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{name}"
        return "application/octet-stream", headers
    headers["Content-Disposition"] = f"inline; filename*=UTF-8''{name}"
    if suffix in SANDBOXED:
        headers["Content-Security-Policy"] = SANDBOXED_FILE
    return kind, headers


def file_endpoint(site: Site, request: Request) -> Response:
    """The bytes of one file of a version (module docstring)."""
    project = request.path_params["project"]
    path = request.path_params["path"]
    try:
        with site.lock:
            store = site.workspace.store(project)
            version = store.artifact(f"{request.path_params['name']}:"
                                     f"{request.path_params['selector']}")
            reader = version.open(path)  # a folder: 404; a reference: 400
            size = reader.seek(0, 2)
            wanted = _range(request.headers.get("range"), size)
            start, end = wanted or (0, size)
            reader.seek(start)
    except ArtifactStoreError as exc:
        return site.failed(request, exc, project)
    except _Unsatisfiable:
        reader.close()
        return Response(f"the range is outside the file ({size} bytes)\n", status_code=416,
                        media_type="text/plain", headers={"Content-Range": f"bytes */{size}"})
    kind, headers = _headers(path)
    headers["Content-Length"] = str(end - start)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"

    def chunks() -> Iterator[bytes]:
        left = end - start
        try:
            while left > 0:
                with site.lock:  # the library's objects serve one thread at a time
                    data = reader.read(min(CHUNK, left))
                if not data:
                    break
                left -= len(data)
                yield data
        finally:
            reader.close()

    return StreamingResponse(chunks(), status_code=206 if wanted else 200,
                             media_type=kind, headers=headers)


def routes(site: Site) -> list[Route]:
    def files(request: Request) -> Response:
        return file_endpoint(site, request)

    return [*site.routes("/artifacts", artifacts_list, "artifacts.html"),
            *site.routes("/artifacts/{name}", artifact_page, "artifact.html"),
            *site.routes("/artifacts/{name}/{selector}", version_page, "version.html"),
            Route("/p/{project}/artifacts/{name}/{selector}/files/{path:path}", files),
            *site.routes("/diff", diff_page, "diff.html")]
