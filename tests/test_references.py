"""Reference entries: recorded by URI, fetched from the source, refused when it changed."""

from __future__ import annotations

from pathlib import Path

import pytest

import artifactstore
from artifactstore import Artifact
from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import ConfigurationError, IntegrityError
from artifactstore.model.tree import ReferenceEntry
from artifactstore.testing.conformance import BackendSpec
from artifactstore.testing.webserver import static_web_server


def _log(
    store: artifactstore.Store, uri: str, checksum: bool = True
) -> artifactstore.ArtifactVersion:
    art = Artifact("refs", type="dataset")
    art.add_reference(uri, name="remote/data.csv", checksum=checksum)
    return store.log_artifact(art)


def test_local_file_reference(tmp_path: Path) -> None:
    source = tmp_path / "outside" / "data.csv"
    source.parent.mkdir()
    source.write_bytes(b"a,b\n1,2\n")
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c") as store:
        version = _log(store, f"file://{source}")
        (entry,) = version.files()
        assert isinstance(entry, ReferenceEntry)
        assert (entry.size, entry.digest) == (8, hash_bytes(b"a,b\n1,2\n"))
        assert entry.etag is not None
        out = version.download(tmp_path / "out")
        assert (out / "remote" / "data.csv").read_bytes() == b"a,b\n1,2\n"
        assert version.verify() == 1
        assert version.verify(out) == 1
        source.write_bytes(b"a,b\n1,3\n")  # same size, new content
        with pytest.raises(IntegrityError, match="changed since it was logged"):
            version.download(tmp_path / "again")
        assert not (tmp_path / "again" / "remote" / "data.csv").exists()


@pytest.mark.s3
def test_s3_reference_with_the_store_options(s3_spec: BackendSpec, tmp_path: Path) -> None:
    bucket_backend = s3_spec.open()
    bucket_backend.put("raw/data.csv", b"x,y\n")
    uri = f"{s3_spec.url}/raw/data.csv"
    # The store on the same S3 endpoint lends its options (endpoint, keys) to the reference.
    with artifactstore.open(s3_spec.url + "/store", create=True, cache_dir=tmp_path / "c2",
                            **s3_spec.options) as store:
        version = _log(store, uri)
        (entry,) = version.files()
        assert isinstance(entry, ReferenceEntry)
        assert entry.etag is not None
        out = version.download(tmp_path / "out")
        assert (out / "remote" / "data.csv").read_bytes() == b"x,y\n"
        bucket_backend.put("raw/data.csv", b"x,z\n")
        with pytest.raises(IntegrityError, match="changed since it was logged"):
            version.download(tmp_path / "again")
    bucket_backend.close()


def test_reference_without_checksum_records_no_digest(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(b"0123456789")
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c") as store:
        version = _log(store, f"file://{source}", checksum=False)
        (entry,) = version.files()
        assert entry.digest is None
        out = version.download(tmp_path / "out")
        assert (out / "remote" / "data.csv").read_bytes() == b"0123456789"


def test_unsupported_scheme_is_clear(tmp_path: Path) -> None:
    store = artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c")
    with store, pytest.raises(ConfigurationError, match="supported schemes"):
        _log(store, "ftp://example.org/x.csv")


def test_https_reference_on_a_local_web_server(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "files").mkdir(parents=True)
    (site / "files" / "labels.csv").write_bytes(b"id,label\n1,cat\n")
    with static_web_server(site) as base, artifactstore.open(
        str(tmp_path / "store"), cache_dir=tmp_path / "c"
    ) as store:
        version = _log(store, f"{base}/files/labels.csv")
        (entry,) = version.files()
        assert isinstance(entry, ReferenceEntry)
        assert entry.etag is not None
        assert entry.digest == hash_bytes(b"id,label\n1,cat\n")
        out = version.download(tmp_path / "out")
        assert (out / "remote" / "data.csv").read_bytes() == b"id,label\n1,cat\n"
        (site / "files" / "labels.csv").write_bytes(b"id,label\n1,dog\n")
        with pytest.raises(IntegrityError, match="changed since it was logged"):
            version.download(tmp_path / "again")


def test_plain_http_off_loopback_is_refused(tmp_path: Path) -> None:
    store = artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c")
    with store, pytest.raises(ConfigurationError, match="http"):
        _log(store, "http://example.org/data.csv")
