"""A stand-in of the Hugging Face hub's HTTP routes that ``snapshot_download`` calls
(repository info, the recursive tree listing, HEAD and GET of ``resolve/<commit>/<file>``),
serving repositories held in memory on 127.0.0.1, so that the real huggingface_hub
writes a real cache offline (``HF_ENDPOINT``). Files ending in .bin, .safetensors or .pt
are LFS files (etag: SHA-256), the others git blobs (etag: git SHA-1), as on the hub."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from artifactstore.testing.webserver import serving_handler

LFS = (".bin", ".safetensors", ".pt")


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    """repo id -> {commit: {path: bytes}}, and repo id -> {ref: commit}."""

    def __init__(self) -> None:
        self.commits: dict[str, dict[str, dict[str, bytes]]] = {}
        self.refs: dict[str, dict[str, str]] = {}

    def commit(self, repo: str, files: Mapping[str, bytes], *refs: str) -> str:
        sha = hashlib.sha1(json.dumps(sorted((p, git_sha1(d)) for p, d in files.items()))
                           .encode()).hexdigest()
        self.commits.setdefault(repo, {})[sha] = dict(files)
        for ref in refs:
            self.refs.setdefault(repo, {})[ref] = sha
        return sha

    def resolve(self, repo: str, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in self.commits.get(repo, {}):
            return rev
        return self.refs.get(repo, {}).get(rev)


def _entry(path: str, data: bytes) -> dict[str, object]:
    entry: dict[str, object] = {"type": "file", "path": path, "size": len(data),
                                "oid": git_sha1(data)}
    if path.endswith(LFS):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                        "pointerSize": 134}
    return entry


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, headers: Mapping[str, str] | None = None,
                  head: bool = False) -> None:
            self.send_response(code)
            for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _route(self, head: bool) -> None:
            parts = urlsplit(self.path).path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                repo, kind, rev = "/".join(parts[2:4]), parts[4], parts[5]
                sha = hub.resolve(repo, rev)
                if sha is None:
                    return self._send(404, b"{}", {"X-Error-Code": "RevisionNotFound"})
                files = hub.commits[repo][sha]
                body: dict[str, object] | list[dict[str, object]]
                if kind == "revision":
                    body = {"id": repo, "sha": sha,
                            "siblings": [{"rfilename": p} for p in sorted(files)]}
                else:  # tree
                    body = [_entry(p, d) for p, d in sorted(files.items())]
                return self._send(200, json.dumps(body).encode(),
                                  {"Content-Type": "application/json"}, head)
            if len(parts) >= 5 and parts[2] == "resolve":
                repo = "/".join(parts[:2])
                sha = hub.resolve(repo, parts[3])
                path = unquote("/".join(parts[4:]))
                data = hub.commits.get(repo, {}).get(sha or "", {}).get(path)
                if data is None:
                    return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
                entry = _entry(path, data)
                lfs = entry.get("lfs")
                etag = lfs["oid"] if isinstance(lfs, dict) else entry["oid"]
                return self._send(200, data, {"X-Repo-Commit": str(sha), "ETag": f'"{etag}"',
                                              "Content-Type": "application/octet-stream"}, head)
            self._send(404, b"")

        def do_GET(self) -> None:
            self._route(False)

        def do_HEAD(self) -> None:
            self._route(True)

    return Handler


@contextmanager
def serving(hub: Hub) -> Iterator[str]:
    """The hub's endpoint URL while the block runs."""
    with serving_handler(_handler(hub)) as url:
        yield url
