"""Public projects read over a bucket's own HTTP(S) endpoint: S3 ListObjectsV2 listings.

The moto tests publish a store through ``s3://`` into a bucket whose policy lets
anyone read and list, then read it as an anonymous reader through
``http://127.0.0.1:<port>/<bucket>/<prefix>`` (loopback http; ``https://`` in real
use). A small stub server plays a bucket endpoint that misbehaves.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import pytest
from artifactstore.core.errors import (
    AccessDeniedError,
    BackendError,
    ConfigurationError,
    ReadOnlyError,
    TransientBackendError,
)
from artifactstore.maintenance.projects import create_project
from cli_calls import cli

import artifactstore
from artifactstore.backends import _s3listing, open_backend
from artifactstore.backends._s3listing import BucketRoot, candidate_roots, explicit_bucket_root
from artifactstore.testing import MotoS3Server
from artifactstore.testing.webserver import static_web_server

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
GCS_NS = "http://doc.s3.amazonaws.com/2006-03-01"


@contextmanager
def config_dir(folder: Path) -> Iterator[None]:
    """Act as the person whose identity lives in ``folder``."""
    with pytest.MonkeyPatch.context() as m:
        m.setenv("ARTIFACTSTORE_CONFIG_DIR", str(folder))
        yield


# -- a published store on moto ----------------------------------------------------


@dataclass
class Published:
    server: MotoS3Server
    bucket: str
    s3_url: str
    http_url: str
    files: dict[str, bytes]

    def s3_keys(self, prefix: str) -> list[str]:
        backend = open_backend(self.s3_url, **self.server.backend_options())
        try:
            return list(backend.list(prefix))
        finally:
            backend.close()


def make_public(server: MotoS3Server, bucket: str) -> None:
    """Public-read bucket policy: anyone may list the bucket and read its objects.

    moto checks anonymous object reads against the policy, and names a HEAD
    request's action ``s3:HeadObject`` (AWS counts it as ``s3:GetObject``).
    """
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*",
        "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }]}
    request = urllib.request.Request(
        f"{server.endpoint_url}/{bucket}?policy", data=json.dumps(policy).encode(),
        headers={"Content-Type": "application/json"}, method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204)


@pytest.fixture(scope="module")
def published(s3_server: MotoS3Server,
              tmp_path_factory: pytest.TempPathFactory) -> Published:
    """A store with public project ``open-lab`` (two versions) and private ``closed-lab``."""
    tmp = tmp_path_factory.mktemp("published")
    bucket = f"public-{os.urandom(4).hex()}"
    s3_server.create_bucket(bucket)
    url = f"s3://{bucket}/lab"
    options = s3_server.backend_options()
    data = tmp / "data"
    (data / "sub").mkdir(parents=True)
    files = {"a.csv": b"id,label\n1,cat\n" * 50, "sub/b.txt": b"for everyone",
             "weights.bin": os.urandom(3_000_000)}
    with config_dir(tmp / "author"):
        artifactstore.open(url, create=True, **options).close()
        create_project("open-lab", url, visibility="public", **options)
        create_project("closed-lab", url, visibility="private", **options)
        with artifactstore.open(url, project="open-lab", cache_dir=tmp / "c", **options) as s:
            (data / "a.csv").write_bytes(files["a.csv"])
            s.log_artifact(data, name="dataset", type="dataset")
            for name, content in files.items():
                (data / name).write_bytes(content)
            s.log_artifact(data, name="dataset", type="dataset", aliases=["prod"])
        with artifactstore.open(url, project="closed-lab", cache_dir=tmp / "c", **options) as s:
            s.log_artifact(data / "sub" / "b.txt", name="secret", type="text")
    make_public(s3_server, bucket)
    return Published(s3_server, bucket, url, f"{s3_server.endpoint_url}/{bucket}/lab", files)


@pytest.mark.s3
def test_a_public_project_reads_over_the_bucket_endpoint(
        published: Published, tmp_path: Path) -> None:
    with config_dir(tmp_path / "anyone"), artifactstore.open(
            published.http_url, project="open-lab", cache_dir=tmp_path / "r") as store:
        assert store.artifacts() == ["dataset"]
        assert [v.ref for v in store.versions("dataset")] == ["dataset:v0", "dataset:v1"]
        version = store.artifact("dataset:prod")
        assert version.ref == "dataset:v1"
        assert version.record.signature.state == "valid"
        out = Path(version.download(tmp_path / "out"))
        for name, content in published.files.items():
            assert (out / name).read_bytes() == content, name
        with version.open("weights.bin") as f:
            assert f.read(1000) == published.files["weights.bin"][:1000]
        with pytest.raises(ReadOnlyError, match="read-only"):
            store.objects.backend.put("config", b"x")
        (tmp_path / "f.txt").write_text("new data")
        with pytest.raises(ReadOnlyError, match="read-only"):
            store.log_artifact(tmp_path / "f.txt", name="other", type="text")
        with pytest.raises(ReadOnlyError, match="read-only"):  # a ref write, no blob
            store.set_alias("dataset:v0", "mine")


@pytest.mark.s3
def test_the_cli_reads_it_and_refuses_writes_with_exit_8(
        published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--store", published.http_url, "--project", "open-lab")
    with config_dir(tmp_path / "anyone"):
        code, out, _ = cli(capsys, "ls", "dataset", *where, "--json")
        assert code == 0
        assert [v["ref"] for v in json.loads(out)["versions"]] == ["dataset:v0", "dataset:v1"]
        (tmp_path / "f.txt").write_text("mine")
        code, out, err = cli(capsys, "log", "other", str(tmp_path / "f.txt"), *where)
        assert (code, out) == (8, "")
        assert err.count("\n") == 1
        assert "read-only" in err


@pytest.mark.s3
def test_a_private_project_read_this_way_is_access_denied(
        published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with config_dir(tmp_path / "anyone"):
        with pytest.raises(AccessDeniedError):
            artifactstore.open(published.http_url, project="closed-lab", cache_dir=tmp_path)
        code, out, err = cli(capsys, "ls", "--store", published.http_url,
                             "--project", "closed-lab")
        assert (code, out) == (12, "")
        assert err.count("\n") == 1
        assert "Traceback" not in err


@pytest.mark.s3
def test_listings_page_with_continuation_tokens(
        published: Published, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_s3listing, "PAGE_SIZE", 3)
    server = published.server
    backend = open_backend(published.http_url)
    server.reset_count()
    everything = list(backend.list(""))
    pages = server.request_count - 1  # one probe, then the pages
    assert everything == published.s3_keys("")
    assert pages >= len(everything) / 3 > 2
    for prefix in ("objects/", "projects/open-lab/artifacts/dataset/versions/",
                   "projects/open", "projects/closed-lab/", "nothing/"):
        assert list(backend.list(prefix)) == published.s3_keys(prefix), prefix
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        backend.list("")

    explicit = open_backend(published.http_url, listing="s3",
                            bucket_root=f"{server.endpoint_url}/{published.bucket}")
    server.reset_count()
    assert list(explicit.list("")) == everything
    assert server.request_count == pages  # a named bucket root needs no probe
    explicit.close()


# -- a misbehaving bucket endpoint -------------------------------------------------

Answer = Callable[[str, dict[str, str]], tuple[int, bytes]]


@contextmanager
def bucket_stub(answer: Answer) -> Iterator[tuple[str, list[str]]]:
    """Serve ``answer(path, query)`` on 127.0.0.1; yields the base URL and the requests seen."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            parts = urlsplit(self.path)
            status, body = answer(parts.path, dict(parse_qsl(parts.query)))
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def list_result(names: list[str], token: str | None = None, ns: str = S3_NS) -> bytes:
    state = (f"<IsTruncated>true</IsTruncated>"
             f"<NextContinuationToken>{escape(token)}</NextContinuationToken>"
             if token else "<IsTruncated>false</IsTruncated>")
    contents = "".join(f"<Contents><Key>{escape(n)}</Key><Size>1</Size></Contents>"
                       for n in names)
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{ns}">'
            f"<Name>b</Name>{state}{contents}</ListBucketResult>").encode()


def s3_error(code: str) -> bytes:
    return f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>".encode()


def test_virtual_hosted_roots_are_found_by_probing_and_names_are_filtered() -> None:
    names = ["store/sub/config", "store/sub/objects/x", "store/subway/no", "store/sub/dir/",
             "store/sub/a//b", "store/sub/../escape", "other/config"]

    def answer(path: str, query: dict[str, str]) -> tuple[int, bytes]:
        if path == "/" and query.get("list-type") == "2":  # only the host root is a bucket
            wanted = query["prefix"]
            return 200, list_result([n for n in names if n.startswith(wanted)], ns=GCS_NS)
        return 404, s3_error("NoSuchKey")

    with bucket_stub(answer) as (base, seen):
        backend = open_backend(f"{base}/store/sub")
        assert seen == []  # opening never probes
        assert list(backend.list("")) == ["config", "objects/x"]
        assert [urlsplit(p).path for p in seen] == ["/store", "/", "/"]  # path-style first
        assert list(backend.list("obj")) == ["objects/x"]
        assert dict(parse_qsl(urlsplit(seen[-1]).query))["prefix"] == "store/sub/obj"
        backend.close()


def test_continuation_tokens_reach_the_server_as_sent() -> None:
    token = "1a+b/c==&x"

    def answer(path: str, query: dict[str, str]) -> tuple[int, bytes]:
        if query.get("continuation-token") == token:
            return 200, list_result(["b/2"])
        return 200, list_result(["b/1"], token=token)

    with bucket_stub(answer) as (base, seen):
        backend = open_backend(f"{base}/b", bucket_root=base)
        assert list(backend.list("")) == ["1", "2"]
        assert len(seen) == 2


MALFORMED = {
    "truncated": b"<ListBucketResult><Contents><Key>config",
    "not-xml": b"<html><body>hello",
    "other-root": b"<ListAllMyBucketsResult></ListAllMyBucketsResult>",
    "no-key": b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
    "no-token": b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
    "not-utf8": "<ListBucketResult/>".encode("utf-16"),
    "entities": (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaa">'
                 b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                 b"<ListBucketResult><Contents><Key>&b;</Key></Contents></ListBucketResult>"),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_listing_is_a_one_line_backend_error(body: bytes) -> None:
    with bucket_stub(lambda path, query: (200, body)) as (base, _):
        backend = open_backend(f"{base}/bucket/store", bucket_root=f"{base}/bucket")
        with pytest.raises(BackendError, match="malformed listing from") as caught:
            list(backend.list(""))
    message = str(caught.value)
    assert "\n" not in message
    assert f"{base}/bucket?list-type=2" in message
    assert not isinstance(caught.value, TransientBackendError)  # retrying would not help


def test_oversized_and_endless_listings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_s3listing, "MAX_PAGE_BYTES", 2000)
    big = list_result([f"k/{i:04d}" for i in range(200)])
    with bucket_stub(lambda path, query: (200, big)) as (base, _):
        backend = open_backend(f"{base}/b", bucket_root=base)
        with pytest.raises(BackendError, match="over 2000 bytes"):
            list(backend.list(""))
    looping = list_result(["k/1"], token="same")
    with bucket_stub(lambda path, query: (200, looping)) as (base, seen):
        backend = open_backend(f"{base}/b", bucket_root=base)
        with pytest.raises(BackendError, match="repeated a continuation token"):
            list(backend.list(""))
        assert len(seen) == 2


def test_a_bucket_that_refuses_anonymous_listing_says_what_it_needs() -> None:
    with bucket_stub(lambda path, query: (403, s3_error("AccessDenied"))) as (base, _):
        for options in ({}, {"listing": "s3"}, {"bucket_root": f"{base}/b"}):
            backend = open_backend(f"{base}/b/store", **options)
            with pytest.raises(BackendError, match=r"HTTP 403 AccessDenied.*s3:ListBucket"):
                list(backend.list(""))


def test_server_errors_are_transient_and_decide_nothing() -> None:
    failing = [True]

    def answer(path: str, query: dict[str, str]) -> tuple[int, bytes]:
        if failing[0]:
            return 503, s3_error("SlowDown")
        return 200, list_result(["config"])  # bucket "b": path-style

    with bucket_stub(answer) as (base, _):
        backend = open_backend(f"{base}/b")
        with pytest.raises(TransientBackendError, match="503"):
            list(backend.list(""))
        failing[0] = False
        assert list(backend.list("")) == ["config"]


def test_folder_index_servers_still_list_and_s3_listing_can_be_required(
        tmp_path: Path) -> None:
    (tmp_path / "store" / "objects").mkdir(parents=True)
    (tmp_path / "store" / "config").write_bytes(b"c")
    (tmp_path / "store" / "objects" / "x").write_bytes(b"x")
    with static_web_server(tmp_path, listings=True) as base:
        for options in ({}, {"listing": "index"}):
            backend = open_backend(f"{base}/store", **options)
            assert list(backend.list("")) == ["config", "objects/x"]
        backend = open_backend(f"{base}/store", listing="s3")
        with pytest.raises(BackendError, match=r"no S3 ListBucketResult.*bucket_root="):
            list(backend.list(""))


# -- options and bucket roots ------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"listing": "xml"}, "unknown listing"),
    ({"bucket_root": "https://elsewhere.example/b"}, "does not contain the store URL"),
    ({"bucket_root": "https://host.example/other"}, "does not contain the store URL"),
    ({"bucket_root": "https://host.example/bu"}, "does not contain the store URL"),
    ({"bucket_root": "https://host.example/b", "listing": "index"}, "drop listing='index'"),
])
def test_bad_options_are_configuration_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_backend("https://host.example/b/store", **options)


def test_a_query_in_the_store_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="pass settings as options"):
        open_backend("https://host.example/b/store?listing=s3")


@pytest.mark.parametrize(("url", "expected"), [
    ("https://s3.us-east-1.amazonaws.com/bkt/lab/x", [
        BucketRoot("https://s3.us-east-1.amazonaws.com/bkt", "lab/x/"),
        BucketRoot("https://s3.us-east-1.amazonaws.com", "bkt/lab/x/")]),
    ("https://bkt.s3.amazonaws.com/lab", [
        BucketRoot("https://bkt.s3.amazonaws.com/lab", ""),
        BucketRoot("https://bkt.s3.amazonaws.com", "lab/")]),
    ("https://storage.googleapis.com/bkt", [
        BucketRoot("https://storage.googleapis.com/bkt", ""),
        BucketRoot("https://storage.googleapis.com", "bkt/")]),
    ("https://bkt.storage.googleapis.com", [BucketRoot("https://bkt.storage.googleapis.com", "")]),
])
def test_candidate_roots_try_path_style_then_the_host(url: str,
                                                      expected: list[BucketRoot]) -> None:
    assert candidate_roots(url) == expected


def test_an_explicit_bucket_root_splits_the_url() -> None:
    url = "https://bkt.s3.amazonaws.com/lab/x"
    assert explicit_bucket_root(url, "https://bkt.s3.amazonaws.com/") == BucketRoot(
        "https://bkt.s3.amazonaws.com", "lab/x/")
    assert explicit_bucket_root("https://e.example/bkt", "https://e.example/bkt") == BucketRoot(
        "https://e.example/bkt", "")
    page = BucketRoot("https://e.example/bkt", "lab/").page_url("lab/a b", "t+/=", 2)
    assert page == ("https://e.example/bkt?list-type=2&prefix=lab%2Fa%20b&max-keys=2"
                    "&continuation-token=t%2B%2F%3D")
