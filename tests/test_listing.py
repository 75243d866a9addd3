"""Listings of versions and alias events (artifactstore/repository/listing.py) through
``Store.version_states`` and ``Store.alias_events``: every version with its state and
current aliases, from the local catalog, as the web UI's artifact pages show them."""

from __future__ import annotations

from pathlib import Path

import pytest

import artifactstore
from artifactstore.core.errors import InvalidInputError


def test_states_aliases_and_events(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    with artifactstore.open(str(tmp_path / "store")) as store:
        for i in range(4):
            (folder / "f.txt").write_text(str(i))
            store.log_artifact(str(folder), name="ds", type="dataset")
        store.set_alias("ds:v0", "prod")
        store.set_alias("ds:v2", "prod")
        store.set_alias("ds:v1", "old")
        store.remove_alias("ds", "old")
        store.delete("ds:v3", reason="bad")
        store.purge("ds:v1", reason="leak", wait=False)
        (folder / "f.txt").write_text("other")
        store.log_artifact(str(folder), name="other", type="model")
        listing = store.version_states("ds")
        assert [(s.record.label, s.state, s.aliases) for s in listing] == [
            ("v0", "live", ()), ("v1", "purged", ()), ("v2", "live", ("latest", "prod")),
            ("v3", "deleted", ())]
        assert listing[3].event is not None
        assert (listing[3].event.action, listing[3].event.reason) == ("delete", "bad")
        assert listing[0].event is None
        everything = store.version_states()
        assert [s.record.ref for s in everything] == \
            ["ds:v0", "ds:v1", "ds:v2", "ds:v3", "other:v0"]
        assert everything[-1].aliases == ("latest",)
        events = store.alias_events("ds")
        assert [(e.alias, e.seq, e.target) for e in events] == [
            ("old", 0, 1), ("old", 1, None), ("prod", 0, 0), ("prod", 1, 2)]
        assert store.version_states("nosuch") == []
        assert store.alias_events("nosuch") == []
        with pytest.raises(InvalidInputError):
            store.version_states("bad name")
        with pytest.raises(InvalidInputError):
            store.alias_events("../x")
