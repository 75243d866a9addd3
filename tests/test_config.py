"""The store config object: creation, races and refusing unknown formats (design §3)."""

from __future__ import annotations

import pytest
from artifactstore.core import encoding
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.errors import FormatError, NotFoundError

from artifactstore.backends import open_backend
from artifactstore.backends.base import Backend
from artifactstore.objects.config import StoreConfig, create_or_load, load
from artifactstore.objects.envelope import Kind, seal
from artifactstore.objects.layout import CONFIG_KEY


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    return open_backend(f"memory://config-{request.node.name}")


def _write_raw_config(backend: Backend, **changes: object) -> None:
    body = encoding.unpack(StoreConfig.new().to_bytes()[8:])
    body.update(changes)
    backend.put(CONFIG_KEY, seal(Kind.CONFIG, encoding.pack(body)))


def test_created_config_reads_back(backend: Backend) -> None:
    wanted = StoreConfig.new(chunker=ChunkerParams(min_size=4096, avg_size=16384,
                                                   max_size=65536), pack_target=1 << 20)
    config, created = create_or_load(backend, wanted)
    assert created
    assert load(backend) == config == wanted


def test_second_creator_uses_the_first_config(backend: Backend) -> None:
    first, _ = create_or_load(backend, StoreConfig.new())
    second, created = create_or_load(backend, StoreConfig.new(pack_target=1 << 20))
    assert not created
    assert second == first


def test_missing_store_says_how_to_create_one(backend: Backend) -> None:
    with pytest.raises(NotFoundError, match="artifactstore init"):
        load(backend)


def test_unknown_format_version_is_refused(backend: Backend) -> None:
    _write_raw_config(backend, format=2)
    with pytest.raises(FormatError, match=r"format 2.*upgrade"):
        load(backend)


def test_unknown_mandatory_feature_is_refused(backend: Backend) -> None:
    _write_raw_config(backend, features={"mandatory": ["time-travel"], "optional": []})
    with pytest.raises(FormatError, match="time-travel"):
        load(backend)


def test_unknown_optional_feature_and_field_are_tolerated(backend: Backend) -> None:
    _write_raw_config(backend, features={"mandatory": [], "optional": ["sparkles"]},
                      future_field=1)
    config = load(backend)
    assert config.optional_features == ("sparkles",)
    assert config.extra == {"future_field": 1}


def test_unknown_chunker_is_refused(backend: Backend) -> None:
    _write_raw_config(backend, chunker={"algorithm": "rabin", "min_size": 1, "avg_size": 2,
                                        "max_size": 3, "normalization": 1, "seed": 0})
    with pytest.raises(FormatError):
        load(backend)
