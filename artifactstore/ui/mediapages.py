"""The media of a run in the web UI: the index of its media
(``/p/<project>/runs/<id>/media``, JSON at ``/api/p/<project>/runs/<id>/media``) that the
run page's media panels (``run_media.html``, ``static/media.js``) are drawn from, and
the bytes of one media file (``/p/<project>/runs/<id>/media/<path or digest>``); what
they show is computed in :mod:`artifactstore.ui.mediaviews`.

The bytes are read through ``Store.media`` with the reference the run's history holds
for the path (digest-checked; decrypted here in a private project) and sent with:

- the Content-Type of the reference's ``format`` (a logged file's name is the logger's
  choice and says nothing), and ``X-Content-Type-Options: nosniff`` so the browser
  does not guess either;
- for HTML and SVG, ``Content-Security-Policy: sandbox`` and nothing else allowed but
  inline styles and ``data:`` pictures: a logged page opened in a frame or a tab runs
  no script, has an origin of its own (no cookie, no access to this UI) and loads
  nothing from the network;
- ``Cache-Control: private, max-age=<a year>, immutable`` and the digest as ETag: a
  media path names its bytes by digest, so they never change;
- ``Accept-Ranges: bytes`` and one-range answers (206), which players seek with.

Anything else (an unknown run, a path the run never logged, a purged file) is a
one-line 404; a file that fails its digest check is a 500 naming ``verify``.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import artifactstore
from artifactstore.core.errors import ArtifactStoreError, InvalidInputError, NotFoundError
from artifactstore.ui import mediaviews
from artifactstore.ui.web import SANDBOXED_FILE, Site, project_base

__all__ = ["routes"]

CACHE: Final = "private, max-age=31536000, immutable"


def media_index(site: Site, request: Request, store: artifactstore.Store) -> dict[str, Any]:
    del site
    return mediaviews.media_index(store, request.path_params["run_id"],
                                  project_base(store.project))


def _failed(exc: ArtifactStoreError) -> Response:
    status = 404 if isinstance(exc, NotFoundError) else \
        400 if isinstance(exc, InvalidInputError) else 500
    return PlainTextResponse(" ".join(str(exc).split()) + "\n", status_code=status)


def routes(site: Site) -> list[Route]:
    resolved = mediaviews.Resolved()

    def media_bytes(request: Request) -> Response:
        project = request.path_params["project"]
        run_id, name = request.path_params["run_id"], request.path_params["ref"]
        try:
            with site.lock:
                store = site.workspace.store(project)
                reference = resolved.reference(store, run_id, name)
                etag = f'"{reference["digest"]}"'
                if request.headers.get("if-none-match") == etag:
                    return Response(status_code=304, headers={"ETag": etag,
                                                               "Cache-Control": CACHE})
                data = store.media(run_id, reference).read()
        except ArtifactStoreError as exc:
            return _failed(exc)
        try:
            span = mediaviews.parse_range(request.headers.get("range"), len(data))
        except InvalidInputError as exc:
            return PlainTextResponse(str(exc) + "\n", status_code=416,
                                     headers={"Content-Range": f"bytes */{len(data)}"})
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": CACHE,
                   "ETag": etag, "Accept-Ranges": "bytes"}
        if mediaviews.sandboxed(reference):
            headers["Content-Security-Policy"] = SANDBOXED_FILE
        status = 200
        if span is not None:
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
            data, status = data[start:end], 206
        return Response(data, status_code=status, headers=headers,
                        media_type=mediaviews.content_type(reference))

    return [*site.routes("/runs/{run_id}/media", media_index, "run_media_page.html"),
            Route("/p/{project}/runs/{run_id}/media/{ref:path}", media_bytes)]
