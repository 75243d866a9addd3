"""Test kit for artifactstore and for third-party backends.

* :mod:`artifactstore.testing.conformance`: :class:`BackendConformance`, the
  contract suite every backend passes, and :class:`BackendSpec` (needs pytest).
* :mod:`artifactstore.testing.servers`: real S3 (moto) and GCS
  (fake-gcs-server) servers on 127.0.0.1.

The names below are imported lazily, on first use, so that importing a
submodule such as ``artifactstore.testing.data`` (benchmarks) does not pull
in pytest, moto or the emulator helpers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from artifactstore.testing.conformance import (
        BackendConformance,
        BackendSpec,
        race_put_if_absent,
    )
    from artifactstore.testing.servers import (
        FakeGcsServer,
        MotoS3Server,
        fake_gcs_server,
        fake_gcs_server_binary,
        moto_s3_server,
    )

__all__ = [
    "BackendConformance",
    "BackendSpec",
    "FakeGcsServer",
    "MotoS3Server",
    "fake_gcs_server",
    "fake_gcs_server_binary",
    "moto_s3_server",
    "race_put_if_absent",
]

_HOMES = {
    "BackendConformance": "artifactstore.testing.conformance",
    "BackendSpec": "artifactstore.testing.conformance",
    "race_put_if_absent": "artifactstore.testing.conformance",
    "FakeGcsServer": "artifactstore.testing.servers",
    "MotoS3Server": "artifactstore.testing.servers",
    "fake_gcs_server": "artifactstore.testing.servers",
    "fake_gcs_server_binary": "artifactstore.testing.servers",
    "moto_s3_server": "artifactstore.testing.servers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
