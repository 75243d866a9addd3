"""Vendor error mapping at the backend boundary (``backends._errors``)."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import cast

import pytest

from artifactstore.backends import LocalBackend
from artifactstore.backends._errors import map_error, mapped_errors
from artifactstore.backends.local import TEMP_PREFIX
from artifactstore.core.errors import (
    ArtifactStoreError,
    BackendError,
    BackendUnavailableError,
    NotFoundError,
    ReadOnlyError,
    StorageFullError,
    TransientBackendError,
)

URL = "s3://bucket/prefix"


def _client_error(code: str, status: int, operation: str = "GetObject") -> Exception:
    from botocore.exceptions import ClientError  # untyped: cast below

    return cast(Exception, ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    ))


def _s3fs(code: str, status: int) -> Exception:
    """The exception s3fs raises: translated builtin with the ClientError as cause."""
    from s3fs.errors import translate_boto_error

    return cast(Exception, translate_boto_error(_client_error(code, status)))  # s3fs: untyped


def _gcs(status: int) -> Exception:
    from gcsfs.retry import HttpError

    return cast(Exception, HttpError({"code": status, "message": "boom"}))  # gcsfs: untyped


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: FileNotFoundError(2, "No such file"), NotFoundError),
        (lambda: _s3fs("NoSuchKey", 404), NotFoundError),
        (lambda: _s3fs("NoSuchBucket", 404), BackendUnavailableError),
        (lambda: _s3fs("AccessDenied", 403), BackendError),
        (lambda: _s3fs("SlowDown", 503), TransientBackendError),
        (lambda: _s3fs("InternalError", 500), TransientBackendError),
        (lambda: _s3fs("ServiceUnavailable", 503), TransientBackendError),
        (lambda: _s3fs("RequestTimeout", 400), TransientBackendError),
        (lambda: _client_error("ThrottlingException", 400), TransientBackendError),
        (lambda: _client_error("ConditionalRequestConflict", 409), TransientBackendError),
        (lambda: _s3fs("InvalidArgument", 400), BackendError),
        (lambda: _gcs(429), TransientBackendError),
        (lambda: _gcs(503), TransientBackendError),
        (lambda: _gcs(401), BackendError),
        (lambda: _gcs(400), BackendError),
        (lambda: OSError("Forbidden: b/bucket/o/key\naccess denied"), BackendError),
        (lambda: OSError(errno.ENOSPC, "No space left on device"), StorageFullError),
        (lambda: OSError(errno.EDQUOT, "Disk quota exceeded"), StorageFullError),
        (lambda: PermissionError(errno.EACCES, "Permission denied"), BackendError),
        (lambda: OSError(errno.EROFS, "Read-only file system"), ReadOnlyError),
        (lambda: ConnectionRefusedError(errno.ECONNREFUSED, "refused"), BackendUnavailableError),
        (lambda: socket.gaierror(-2, "Name or service not known"), BackendUnavailableError),
        (lambda: TimeoutError("timed out"), TransientBackendError),
        (lambda: ConnectionResetError(errno.ECONNRESET, "reset"), TransientBackendError),
        (lambda: RuntimeError("something odd"), BackendError),
    ],
)
def test_classification(make: object, expected: type[ArtifactStoreError]) -> None:
    exc = make()  # type: ignore[operator]
    mapped = map_error(exc, op="get", key="a/b", url=URL)
    assert type(mapped) is expected


def test_botocore_connection_errors() -> None:
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert type(map_error(refused, op="get", key="k", url=URL)) is BackendUnavailableError
    slow = ConnectTimeoutError(endpoint_url="http://127.0.0.1:9")
    assert type(map_error(slow, op="get", key="k", url=URL)) is TransientBackendError
    read = ReadTimeoutError(endpoint_url="http://127.0.0.1:9")
    assert type(map_error(read, op="get", key="k", url=URL)) is TransientBackendError


def test_missing_on_write_means_missing_root() -> None:
    mapped = map_error(FileNotFoundError("gone"), op="put", key="k", url=URL)
    assert isinstance(mapped, BackendUnavailableError)
    mapped = map_error(FileNotFoundError("gone"), op="list", key="", url=URL)
    assert isinstance(mapped, BackendUnavailableError)


def test_message_is_one_line_with_operation_key_url_and_advice() -> None:
    mapped = map_error(_s3fs("AccessDenied", 403), op="put_if_absent", key="refs/v1", url=URL)
    message = str(mapped)
    assert "\n" not in message
    assert message.startswith(f"put_if_absent 'refs/v1' on {URL}: permission denied")
    assert "check the credentials" in message


def test_mapped_errors_keeps_the_cause_and_passes_ours_through() -> None:
    original = _s3fs("SlowDown", 503)
    with pytest.raises(TransientBackendError) as info, mapped_errors("get", "k", URL):
        raise original
    assert info.value.__cause__ is original
    ours = NotFoundError("already mapped")
    with pytest.raises(NotFoundError) as again, mapped_errors("get", "k", URL):
        raise ours
    assert again.value is ours


def test_local_disk_full_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalBackend(tmp_path)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("artifactstore.backends.local.os.fsync", full)
    with pytest.raises(StorageFullError, match="no space left"):
        backend.put("a/b", b"data")
    with pytest.raises(StorageFullError):
        backend.put_if_absent("a/c", b"data")
    monkeypatch.undo()
    assert not any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.rglob("*"))
    assert list(backend.list()) == []
