"""A Hypothesis state machine: the object store against a dict model.

Writes, flushes, aborts, reopenings by a second client and reads interleave in
any order; whatever was flushed must read back exactly, and nothing aborted may
ever become readable.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.errors import NotFoundError
from artifactstore.core.synthetic import random_bytes
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from artifactstore.backends import drop_memory_store, open_backend
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.store import ObjectStore

PARAMS = ChunkerParams(min_size=256, avg_size=1024, max_size=4096)


class ObjectStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.name = f"stateful-{uuid.uuid4().hex[:8]}"
        self.cache = Path(tempfile.mkdtemp(prefix="as-stateful-"))
        self.config = StoreConfig.new(chunker=PARAMS, pack_target=8192)
        self.store = self._open()
        self.committed: dict[FileRef, bytes] = {}
        self.pending: dict[FileRef, bytes] = {}
        self.aborted: dict[FileRef, bytes] = {}

    def _open(self, cache: str = "main") -> ObjectStore:
        return ObjectStore.open(open_backend(f"memory://{self.name}"), create=self.config,
                                cache_dir=self.cache / cache, concurrency=2)

    @rule(size=st.integers(0, 20_000), seed=st.integers(0, 50))
    def write(self, size: int, seed: int) -> None:
        data = random_bytes(size, seed)
        ref = self.store.write_bytes(data)
        assert ref.size == size
        self.pending[ref] = data

    @rule()
    def flush(self) -> None:
        self.store.flush()
        self.committed.update(self.pending)
        self.pending.clear()

    @rule()
    def abort(self) -> None:
        self.store.abort()
        for ref, data in self.pending.items():
            if ref not in self.committed:
                self.aborted[ref] = data
        self.pending.clear()

    @rule()
    def reopen(self) -> None:
        self.store.abort()
        self.store._shutdown()
        self.pending.clear()
        self.store = self._open()

    @precondition(lambda self: self.committed)
    @rule(data=st.data(), fresh_client=st.booleans())
    def read(self, data: st.DataObject, fresh_client: bool) -> None:
        ref = data.draw(st.sampled_from(sorted(self.committed, key=lambda r: r.digest)))
        if fresh_client:
            with self._open(cache=uuid.uuid4().hex) as other:
                assert other.read_file(ref) == self.committed[ref]
        else:
            assert self.store.read_file(ref) == self.committed[ref]

    @invariant()
    def aborted_content_is_not_readable_by_others(self) -> None:
        only_aborted = [
            ref for ref in self.aborted
            if ref not in self.committed and ref.chunks
            and not any(c in r.chunks for r in self.committed for c in ref.chunks)
        ]
        if not only_aborted:
            return
        with self._open(cache=uuid.uuid4().hex) as other:
            for ref in only_aborted[:3]:
                try:
                    other.read_file(ref)
                except NotFoundError:
                    continue
                raise AssertionError(f"aborted file {ref.digest} became readable")

    def teardown(self) -> None:
        self.store.abort()
        self.store._shutdown()
        drop_memory_store(self.name)
        shutil.rmtree(self.cache, ignore_errors=True)


ObjectStoreMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
TestObjectStore = ObjectStoreMachine.TestCase
