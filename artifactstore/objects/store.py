"""The object store: content-addressed blobs in packs on a backend.

Vocabulary: *writing* a blob seals it (design §4) into the open pack unless the
merged index or this session already holds its id (*dedup*); a full pack is
uploaded in the background; *flushing* closes the open pack, waits for every
upload and then writes the index objects that list them (design §7: packs before
index). Until a flush succeeds, blobs written in this session are *pending*:
they deduplicate later writes of this session only, and are forgotten if the
flush fails, so nothing ever points at a pack that did not fully land.

Reading locates a blob in the merged index (here: pending blobs are flushed first, a
missing one refreshes the index once); range-reading and verifying it is
:class:`~.blobreads.BlobReader`'s, to which the read methods delegate.

An ``ObjectStore`` is used from one thread; its I/O concurrency is internal.

Length: the object store's one class owns the write session (open packs, upload
pool, commit guard, index refresh and freshness); reads are in blobreads.py, the pack
and index byte formats in packs.py and index.py, streamed reads in streamedread.py.
The file being written is read through filesource.py (its digest, its sniffed head and
profile), and a session's blob ids are kept in sessionblobs.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from artifactstore.backends.base import Backend, capable, put_from_file
from artifactstore.core.chunking import chunk_views, iter_chunks
from artifactstore.core.digest import Digest, Hasher, hash_bytes
from artifactstore.core.errors import (
    ArtifactStoreError,
    ConflictError,
    NotFoundError,
)
from artifactstore.core.heap import trim_heap
from artifactstore.core.privatefiles import tighten
from artifactstore.objects import config as config_mod
from artifactstore.objects.blobreads import BlobReader
from artifactstore.objects.blobrefs import ChunkRef, FileRef, WriteStats
from artifactstore.objects.chunksealing import ChunkSealing
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.deltas import DeltaSource
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import (
    HEADER_SIZE,
    Compression,
    Kind,
)
from artifactstore.objects.filesource import FIRST_READ, HashingReader, file_profile
from artifactstore.objects.freshness import IndexFreshness
from artifactstore.objects.gcrecords import Condemnation, CondemnationCache
from artifactstore.objects.index import BlobLocation, MergedIndex, decode_index, encode_indexes
from artifactstore.objects.layout import (
    PLAIN_DOMAIN,
    index_key,
    index_prefix,
    pack_key,
    parse_id_key,
)
from artifactstore.objects.packs import (
    PINNED_BUFFERS,
    BlobEntry,
    FinishedPack,
    PackBatch,
    check_pack,
    pack_parts,
)
from artifactstore.objects.sessionblobs import SessionBlobs
from artifactstore.objects.spool import SpoolError, Spools

__all__ = ["ObjectStore", "Progress", "default_cache_dir"]

Progress = Callable[[int], None]
"""Called with a byte count as work advances (to drive a progress bar)."""

#: the chunker's reads of a file being written, to a local store and to a remote one
_WRITE_READ = 8 << 20
_REMOTE_WRITE_READ = 4 << 20
#: packs uploading at once through a backend that joins them (S3, GCS, memory)
_JOINED_UPLOADS = 1
#: packs being sealed and written at once through one that does not (local): the
#: writer's thread chunks and hashes while these use the other core
_VECTORED_UPLOADS = 2
#: chunks of a big compressible file sealed (or waiting to be) in the pool at once: enough
#: to keep both cores compressing, few enough that they view a few read buffers only
_SEALING_IN_FLIGHT = 8
#: threads sealing those chunks: one per core of the machines measured (more only
#: contend for the cores and the GIL and each keeps its own zstd context)
_SEALING_THREADS = 2
#: listings an index refresh tries when gc replaces index objects under it
_REFRESH_ATTEMPTS = 5
#: a writer whose index needs no listing (freshness.py) still lists this often, to
#: deduplicate against what other writers stored meanwhile
_RELIST_AFTER = 300.0
#: the local index cache is rewritten whole; a writer saves it at most this often
#: (and on close): a cache missing rows only costs refetching their index objects
_SAVE_EVERY = 30.0
#: bytes of the previous file's chunks a writer reads at once as bases of delta chunks
_BASES_AHEAD = 4 << 20
#: read buffers kept for reuse while one file is chunked (core/readbuffers.py): the
#: open batch and each pack sealing pin up to PINNED_BUFFERS, plus the one being cut
#: and the one being hashed
_READ_BUFFERS = (_VECTORED_UPLOADS + 1) * PINNED_BUFFERS + 2
#: the same when the chunks are sealed as they come (packs.ChunkSealing): the one being
#: read, the one being hashed, the carry's, and those the chunks in flight view
_SEALED_READ_BUFFERS = 6


def default_cache_dir() -> Path:
    """``$ARTIFACTSTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/artifactstore``, else ~/.cache."""
    explicit = os.environ.get("ARTIFACTSTORE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "artifactstore"


class ObjectStore:
    """Blobs of one key domain of one store."""

    def __init__(
        self,
        backend: Backend,
        config: StoreConfig,
        *,
        domain: str = PLAIN_DOMAIN,
        cache_dir: str | os.PathLike[str] | None = None,
        concurrency: int = 8,
        keys: DomainKeys | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.backend = backend
        self.config = config
        #: an encrypted domain's keys (design §13.3); None for the plain domain
        self.keys = keys
        self.domain = domain if keys is None else keys.domain
        self.stats = WriteStats()
        self._concurrency = concurrency
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        # The cache is named by store id and location, so two stores never share one.
        where = hashlib.sha256(backend.url.encode()).hexdigest()[:16]
        index_folder = cache_root / "index" / f"{config.store_id}-{where}"
        for folder in (cache_root, index_folder.parent, index_folder):
            tighten(folder)  # made by an older version (0755): private from now on
        self._index = MergedIndex(
            index_folder / f"{self.domain}.idx", keys,
            cache_root=cache_root,
        )
        # A damaged block of the index cache is found by a lookup: merge the store's again.
        self._index.on_damage = self.refresh_index
        self._index_loaded = False
        self._pool = ThreadPoolExecutor(max_workers=concurrency,
                                        thread_name_prefix="artifactstore-io")
        #: one thread for file digests, so they run in order beside the chunking
        self._digest_pool = ThreadPoolExecutor(max_workers=1,
                                               thread_name_prefix="artifactstore-digest")
        # Bounds memory: at most this many closed packs are sealed and uploaded at
        # once, each holding its plaintext and its sealed copy. A backend that must
        # join a pack into one buffer to send it (S3, GCS) holds one more copy while
        # it uploads, so fewer are in flight there (peak RSS, not throughput).
        self._vectored = capable(backend, "supports_vectored_put")
        self._streamed = capable(backend, "supports_streamed_put")
        #: a pack is uploaded from a temporary file (streamed put, S3): spool.py
        self._spooled = self._streamed and hasattr(backend, "put_file")
        self._spools = Spools()
        # A remote store's pack is sealed as blobs come (PackBatch eager) and one is
        # uploaded meanwhile: smaller reads keep that under the RSS target.
        self._read_size = _WRITE_READ if self._vectored else _REMOTE_WRITE_READ
        self._upload_slots = threading.BoundedSemaphore(
            min(concurrency, _VECTORED_UPLOADS if self._vectored else _JOINED_UPLOADS))
        #: a local store seals a big compressible file's chunks in the pool as they come
        #: (packs.ChunkSealing); a remote one as they are added (eager: memory decides)
        self._seal_pool = (ThreadPoolExecutor(max_workers=_SEALING_THREADS,
                                              thread_name_prefix="artifactstore-seal")
                           if self._vectored else None)
        self._chunk_sealing = (ChunkSealing(self._seal_pool, _SEALING_IN_FLIGHT)
                               if self._seal_pool is not None else None)
        self._batch = self._new_batch()
        #: tree nodes, manifests, chunk lists: packed apart from file data, so that a
        #: streamed log (which writes each folder's node as it leaves it) keeps a
        #: version's nodes together for readers (one range read, not one per data
        #: pack); joined to the last data pack at a flush (no extra request)
        self._structured = self._new_batch()
        self._pending: set[bytes] = set()
        self._uploads: list[Future[FinishedPack]] = []
        self._closed = False
        # Commit sessions (design §15): blobs gc has condemned are not deduplicated
        # against, and every blob a version names is checked before its commit point.
        # One range read covers at most a whole pack (its target, the blob that filled
        # it, and the envelope overhead), and one more read is in flight while the
        # caller consumes the last. Remote reads are streamed (objects/streamedread.py),
        # so each holds a few MiB, not its span.
        self._reader = BlobReader(
            backend, self.domain, keys, locate=self.locate, refresh=self.refresh_index,
            bases=self._index.bases, blob_id=self.blob_id, pool=self._pool,
            digest_pool=self._digest_pool,
            concurrency=concurrency, vectored=self._vectored,
            read_window=config.pack_target + config.largest_chunk + (64 << 10))
        self._condemnations = CondemnationCache(backend, self.domain)
        self._freshness = IndexFreshness(config.commit_window, _RELIST_AFTER)
        self._saved_at: float | None = None  # the first flush saves at once
        self._unsaved = False  # rows written since the index cache was last saved
        self._avoid: frozenset[bytes] = frozenset()
        self._session: SessionBlobs | None = None
        self._checked_at: float | None = None
        #: a session that has not looked at the store yet (begin_session(refresh=False))
        self._lazy = False

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        backend: Backend,
        *,
        create: StoreConfig | None = None,
        domain: str = PLAIN_DOMAIN,
        cache_dir: str | os.PathLike[str] | None = None,
        concurrency: int = 8,
        keys: DomainKeys | None = None,
    ) -> ObjectStore:
        """Open the store at ``backend``; with ``create``, initialise it if absent.

        With ``keys`` the store reads and writes that encrypted domain (§13.3).
        """
        if create is not None:
            config, _ = config_mod.create_or_load(backend, create)
        else:
            config = config_mod.load(backend)
        return cls(backend, config, domain=domain, cache_dir=cache_dir,
                   concurrency=concurrency, keys=keys)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
            self._shutdown()

    def close(self) -> None:
        """Flush and release the I/O pool (the backend stays open: the caller owns it)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._shutdown()
            self._save_index()

    def _shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._digest_pool.shutdown(wait=True, cancel_futures=True)
        if self._seal_pool is not None:
            self._seal_pool.shutdown(wait=True, cancel_futures=True)
        self._spools.close()

    # -- writing -----------------------------------------------------------------

    def blob_id(self, plaintext: bytes | memoryview) -> Digest:
        """The id of ``plaintext`` in this domain: keyed BLAKE3 when it is encrypted."""
        return hash_bytes(plaintext, key=None if self.keys is None else self.keys.id_key)

    def write_file(self, stream: BinaryIO, progress: Progress | None = None,
                   size_hint: int | None = None,
                   previous: Callable[[], FileRef | None] | None = None) -> FileRef:
        """Chunk, deduplicate and store a stream of any size in bounded memory.

        ``progress`` is called with the byte count of each chunk as it is stored.
        ``size_hint`` (the file's size, when known) keeps reads of small files small.
        ``previous``: the same path's file in the version this one is logged on top of
        (asked only for a big compressible file): its chunks are the bases the new
        chunks are tried against as deltas, where the store allows them (deltas.py).
        """
        # The file digest is taken on the chunker's big reads, not per chunk (fewer
        # calls, no copies), by one thread beside the chunking: BLAKE3's own
        # multi-threading competes with the I/O pool for the second core and made
        # 512 MiB ingests ~15% slower here; one background thread made them faster.
        reader = HashingReader(stream, Hasher(parallel=False), self._digest_pool, size_hint)
        try:
            params, compression, source = file_profile(self.config, reader)
            # A file of at least two more reads after the first is read into reused
            # buffers: its chunks wait in packs as views of them (up to PINNED_BUFFERS
            # per pack, a few packs sealing at once), and a buffer is read into again
            # once none is left. A smaller file keeps reads of its own size (a buffer
            # of a whole read for its tail would be mostly unused).
            # Chunks sealed as they come (a big compressible file, local) view few
            # buffers at once: fewer are kept, idle ones too.
            sealed = compression is not None and self._chunk_sealing is not None
            reuse = ((_SEALED_READ_BUFFERS if sealed else _READ_BUFFERS)
                     if size_hint is None or size_hint > 3 * FIRST_READ else 0)
            chunks, size = self._store_chunks(
                iter_chunks(source, params, read_size=self._read_size, reuse_buffers=reuse,
                            keep_idle_buffers=sealed),
                progress, compression, self._delta_source(compression, previous))
        except BaseException:
            reader.abandon()
            raise
        return FileRef(reader.digest(), size, chunks)

    def write_bytes(
        self, data: bytes | bytearray | memoryview, progress: Progress | None = None,
        previous: Callable[[], FileRef | None] | None = None,
    ) -> FileRef:
        """``write_file`` for bytes already in memory, without copying ``bytes``.

        Packs keep views of ``data`` until they are uploaded, so a mutable buffer
        is copied first: changing it afterwards must not change what is stored.
        """
        if type(data) is not bytes:
            data = bytes(data)
        params, compression = self.config.chunker, None
        big = self.config.big_chunks
        if big is not None and big.applies(data, len(data)):
            params, compression = big.chunker, big.compression
        chunks, size = self._store_chunks(chunk_views(data, params), progress, compression,
                                          self._delta_source(compression, previous))
        # A one-chunk file's plain digest is its chunk id: no second hash.
        if len(chunks) == 1 and self.keys is None:
            return FileRef(chunks[0].id, size, chunks)
        return FileRef(hash_bytes(data), size, chunks)

    def reuse(self, ref: FileRef, progress: Progress | None = None) -> bool:
        """Take a file's chunks as stored, without reading the file (a stat-cache hit),
        if every one is still indexed and not condemned; False: read it instead."""
        self._check_open()
        self._ensure_index()
        index, pending = self._index, self._pending
        for chunk in ref.chunks:
            raw = chunk.id.raw
            if raw not in pending and (chunk.id not in index or raw in self._avoid):
                if not self._lazy:
                    return False
                self._start_reads()  # the local index may be behind: look, then decide
                return self.reuse(ref, progress)
        if self._session is not None:
            self._session.update(c.id.raw for c in ref.chunks)
        self.stats.bytes_in += ref.size
        self.stats.blobs_deduplicated += len(ref.chunks)
        if progress is not None:
            progress(ref.size)
        return True

    def reuse_blobs(self, ids: Sequence[bytes], size: int,
                    progress: Progress | None = None) -> bool:
        """:meth:`reuse` for a whole stored folder of a re-log (its tree node and every
        chunk of its files, ``size`` bytes): True if every blob is still indexed and
        not condemned (they join the session: the commit guard checks them again);
        False: store the folder's files one by one instead."""
        self._check_open()
        self._ensure_index()
        pending, avoid = self._pending, self._avoid
        lacking = [raw for raw in self._index.missing(ids) if raw not in pending]
        if not lacking and avoid:
            lacking = [raw for raw in ids if raw in avoid and raw not in pending]
        if lacking:
            if not self._lazy:
                return False
            self._start_reads()  # the local index may be behind: look, then decide
            return self.reuse_blobs(ids, size, progress)
        if self._session is not None:
            self._session.update(ids)
        self.stats.bytes_in += size
        self.stats.blobs_deduplicated += len(ids)
        if progress is not None:
            progress(size)
        return True

    def write_chunks(self, chunks: Iterable[bytes | memoryview],
                     progress: Progress | None = None) -> tuple[ChunkRef, ...]:
        """Store a file's chunks as they are (no re-chunking): moving a file between
        key domains keeps its cut points."""
        return self._store_chunks((memoryview(c) for c in chunks), progress)[0]

    def put_blob(self, kind: Kind, plaintext: bytes) -> Digest:
        """Store one structured blob (a tree node, a manifest root) and return its id."""
        self._check_open()
        self._ensure_index()
        return self._add(kind, plaintext, False)

    def _delta_source(self, compression: Compression | None,
                      previous: Callable[[], FileRef | None] | None) -> DeltaSource | None:
        """The chunks new chunks of this file are tried against as deltas, or None: only
        for a big compressible file (``compression`` is big_chunks'), in a store whose
        config allows deltas (design §3), when the caller names a previous file."""
        if (previous is None or compression is None or not self.config.delta_chunks
                or self.config.big_chunks is None
                or compression is not self.config.big_chunks.compression):
            return None
        ref = previous()
        return DeltaSource.of(ref) if ref is not None and ref.chunks else None

    def _store_chunks(
        self, chunks: Iterable[memoryview], progress: Progress | None,
        compression: Compression | None = None, delta: DeltaSource | None = None,
    ) -> tuple[tuple[ChunkRef, ...], int]:
        self._check_open()
        self._ensure_index()
        refs = []
        size = 0
        add = self._add
        for chunk in chunks:
            length = len(chunk)
            refs.append(ChunkRef(add(Kind.CHUNK, chunk, True, compression, delta, size),
                                 length))
            size += length
            if progress is not None:
                progress(length)
        return tuple(refs), size

    def _delta_bases(self, delta: DeltaSource, offset: int, length: int,
                     ) -> tuple[tuple[Digest, ...], tuple[bytes, ...]]:
        """The bases (ids, plaintexts) a new chunk at ``offset`` is tried against: the
        previous file's chunks overlapping it that are indexed as plain chunks and not
        condemned (depth 1, design §4), read through the checked reader."""
        usable = [b for b in delta.bases(offset, length) if self._may_base(b)]
        if not usable:
            return (), ()
        cache = self._reader.bases.cache
        try:
            if not all(cache.holds(b) for b in usable):
                # this base and the next ones of the previous file, read together (one
                # range read per pack run on a remote store, not one per base)
                ahead, size = [], 0
                for base in delta.following(usable[0]):
                    if size >= _BASES_AHEAD:
                        break
                    if not cache.holds(base) and self._may_base(base):
                        ahead.append(base)
                        size += self._index.lookup(base).raw_length  # type: ignore[union-attr]
                for base, plain in self.read_many(ahead):
                    cache.put(base, plain)
            data = tuple(cache.get(b, self.read_blob) for b in usable)
        except NotFoundError:  # gc took a base meanwhile: store the chunk plain
            return (), ()
        if self._session is not None:  # the commit check covers the bases too
            self._session.update(b.raw for b in usable)
        return tuple(usable), data

    def _may_base(self, base: Digest) -> bool:
        """Whether ``base`` may be a delta's base: indexed as a plain chunk, not pending,
        not condemned (design §4)."""
        if base.raw in self._pending or base.raw in self._avoid:
            return False
        location = self._index.lookup(base)
        return location is not None and location.kind is Kind.CHUNK

    def _add(self, kind: Kind, plaintext: bytes | memoryview, adaptive: bool,
             compression: Compression | None = None, delta: DeltaSource | None = None,
             offset: int = 0) -> Digest:
        """Put one blob into the open pack unless the store already has it (hot path);
        the pack's :class:`PackBatch` seals it (in the I/O pool on a local store)."""
        # one thread: the writer's other threads (sealing, file digest) use the cores
        blob_id = hash_bytes(plaintext, key=None if self.keys is None else self.keys.id_key,
                             parallel=False)
        stats = self.stats
        length = len(plaintext)
        stats.bytes_in += length
        session = self._session
        if session is not None:
            session.add(blob_id.raw)
        if blob_id.raw in self._pending or (
            blob_id in self._index and blob_id.raw not in self._avoid
        ):
            stats.blobs_deduplicated += 1
            return blob_id
        if self._lazy:  # about to write: look at the store now (and ask again)
            self._start_reads()
            stats.bytes_in -= length
            return self._add(kind, plaintext, adaptive, compression, delta, offset)
        batch = self._batch if kind is Kind.CHUNK else self._structured
        bases, base_data = (self._delta_bases(delta, offset, length) if delta is not None
                            else ((), ()))
        batch.add(blob_id, kind, plaintext, adaptive=adaptive, compression=compression,
                  bases=bases, base_data=base_data)
        self._pending.add(blob_id.raw)
        stats.blobs_new += 1
        stats.bytes_new += length
        if batch.size >= self.config.pack_target:
            self._close_pack(batch)
        return blob_id

    def _new_batch(self) -> PackBatch:
        # Sealed in the I/O pool where packs are written without joining (local);
        # for the others as blobs are added (PackBatch: memory, not speed, decides).
        return PackBatch(self.config.compression, self.keys, eager=not self._vectored,
                         sealing=self._chunk_sealing)

    def _close_pack(self, batch: PackBatch | None = None) -> None:
        batch = self._batch if batch is None else batch
        if not len(batch):
            return
        self._raise_failed_upload()
        # The job gets the pack in a box it empties: the pool's work item would
        # otherwise keep the pack's blobs (and the read buffers they pin) alive
        # for the whole upload.
        box = [batch.take()]
        self._upload_slots.acquire()
        try:
            future = self._pool.submit(self._upload_pack, box)
        except BaseException:
            self._upload_slots.release()
            raise
        future.add_done_callback(lambda _: self._upload_slots.release())
        self._uploads.append(future)

    def _upload_pack(self, box: list[PackBatch]) -> FinishedPack:
        # Sealing, joining and hashing here, in the I/O pool, overlaps them with
        # chunking (zstd, AES and BLAKE3 release the GIL: both cores work).
        batch = box.pop()
        # Giving the heap's free memory back costs its page faults again when the next
        # packs' envelopes are made (~20,000 for the suite's table, ~0.1 CPU s): done
        # where the pack pinned read buffers, which are the memory worth giving back.
        trim = batch.pins_buffers or not self._vectored
        pending = batch.seal()
        del batch
        pack_id, parts = pack_parts(pending, self.keys)
        entries = pending.entries
        del pending
        key = pack_key(self.domain, pack_id)
        if self._spooled:  # the pack waits in a file, not in memory (spool.py)
            listed = list(parts)
            del parts
            try:
                with self._spools.spooled(listed) as (file, size):
                    trim_heap()  # the sealed blobs and the read buffers they pinned
                    put_from_file(self.backend, key, file, size)
            except SpoolError:  # $TMPDIR full or unwritable: nothing sent; from memory
                self.backend.put_parts(key, listed)
            del listed
        elif self._vectored or self._streamed:  # the parts as they are (no joined copy)
            self.backend.put_parts(key, parts)
            del parts
            if trim:
                trim_heap()  # the sealed blobs and the read buffers they pinned, as below
        else:  # one buffer, and the read buffers the parts pinned are released now
            data = b"".join(parts)
            del parts
            self.backend.put(key, data)
            del data
            trim_heap()  # glibc would keep the freed pack buffers mapped (heap.py)
        return FinishedPack(pack_id, b"", entries)  # the parts are freed on return

    def _raise_failed_upload(self) -> None:
        for future in self._uploads:
            if future.done() and future.exception() is not None:
                self.abort()
                raise _upload_error(future)

    def flush(self) -> None:
        """Make every blob written so far durable and findable (design §7).

        Packs first, then the index objects that list them. On failure nothing
        written since the last flush is referenced, and the error is raised.
        """
        self._check_open()
        self._batch.absorb(self._structured)  # the nodes after the data, in one pack
        self._close_pack()
        uploads, self._uploads = self._uploads, []
        finished: list[FinishedPack] = []
        first_error: BaseException | None = None
        for future in uploads:
            try:
                finished.append(future.result())
            except BaseException as exc:  # collect, then fail after all settled
                first_error = first_error or exc
        if first_error is not None:
            self.abort()
            raise _as_store_error(first_error)
        if not finished:
            return
        written: list[tuple[Digest, bytes]] = []
        try:
            for index_id, data in encode_indexes(
                ((p.id, p.entries) for p in finished), self.config.compression, self.keys
            ):
                self.backend.put(index_key(self.domain, index_id), data)
                written.append((index_id, data))
        except BaseException:
            self.abort()
            raise
        self.stats.packs_written += len(finished)
        self.stats.bytes_stored += sum(e.length for p in finished for e in p.entries)
        for index_id, data in written:  # each row remembers the object that lists it
            for pack_id, entries in decode_index(index_id, data, self.keys):
                self._index.add_pack(pack_id, entries, index_id=index_id, prefer=True)
            self._index.note_written(index_id)
            self.stats.indexes_written += 1
        self._pending.clear()
        self._unsaved = True
        if self._saved_at is None or time.monotonic() - self._saved_at >= _SAVE_EVERY:
            self._save_index()

    def _save_index(self) -> None:
        if self._unsaved:
            self._unsaved = False
            self._saved_at = time.monotonic()
            self._index.save()

    def abort(self) -> None:
        """Forget everything written since the last flush (its packs become garbage)."""
        for future in self._uploads:
            future.cancel()
        for future in self._uploads:
            if not future.cancelled():
                with contextlib.suppress(BaseException):
                    future.result()
        self._uploads = []
        self._batch = self._new_batch()
        self._structured = self._new_batch()
        self._pending.clear()

    # -- commit sessions (design §15) -----------------------------------------------

    def begin_session(self, *, refresh: bool = True) -> None:
        """Start writing blobs for one commit: refresh the index and learn which
        blobs gc has condemned, so they are written anew instead of deduplicated.

        ``refresh=False`` (every file is known from the stat cache, so most likely
        nothing new is written) skips both listings; the check before the commit
        point still refreshes, so a stale decision can only fail the commit.
        """
        self._check_open()
        self._session = SessionBlobs()
        self._checked_at = None
        self._lazy = not refresh and len(self._index) > 0
        if self._lazy:
            self._index_loaded = True  # the local copy of the index, until a write needs more
            self._avoid = frozenset()
        else:
            self._start_reads(counts_as_check=True)

    def _start_reads(self, *, counts_as_check: bool = False) -> None:
        """The session's fresh look at the index and the condemnations (in this order:
        a sweep deletes its condemnation last, so a blob it is removing is either
        gone from the index or still listed as condemned)."""
        self._lazy = False
        started = time.monotonic()
        if self._freshness.may_skip(started):  # look first; list only if it found any
            records = self._look()
            if not self._freshness.trusted():
                self.refresh_index()
        else:
            self.refresh_index()
            records = self._look()
        self._avoid = frozenset(_blobs_of(records))
        # A look before anything was deduplicated is the pre-commit check if the
        # commit point follows within half the commit window (design §15): nothing
        # condemned is deduplicated, and what gc condemns from now on is swept only
        # a whole window later. (A lazy session looked late: it checks again.)
        if counts_as_check:
            self._checked_at = started

    def end_session(self) -> None:
        self._reader.bases.cache.clear()  # the bases of this session's deltas
        self._session = None
        self._avoid = frozenset()
        self._checked_at = None
        self._lazy = False

    def note_session_blobs(self, ids: Iterable[bytes]) -> None:
        """Blobs a commit names without writing them (entries reused from a version)."""
        if self._session is not None:
            self._session.update(ids)

    def session_blobs(self) -> frozenset[bytes]:
        """Every blob id written or deduplicated since :meth:`begin_session`."""
        return frozenset(self._session or ())

    def _session_or(self, blob_ids: Iterable[bytes] | None) -> Iterable[bytes]:
        if blob_ids is not None:
            return frozenset(blob_ids)
        return self._session or ()

    def _look(self) -> list[Condemnation]:
        """The domain's condemnations now (the look :class:`IndexFreshness` chains)."""
        started = time.monotonic()
        records = self._condemnations.current()
        self._freshness.looked(started, quiet=not records)
        return records

    def prepare_commit(self, blob_ids: Iterable[bytes] | None = None) -> int:
        """Check, right before a commit point, that every blob it names is still stored.

        ``blob_ids`` default to the session's. A blob in a pack gc has condemned
        is copied into a new pack (*rescued*) unless it is being purged; a blob
        no index lists any more, or a purged one, is a ConflictError: the
        version cannot be committed, log it again. Returns how many blobs were
        rescued. The commit point must follow within half the store's commit
        window (:meth:`commit_guard`).
        """
        self._check_open()
        # the session's as they are (no set of a million), with the bases of delta copies
        ids = self._with_bases(self._session_or(blob_ids))
        started = time.monotonic()
        self._lazy = False
        records = self._look()
        listed = not self._freshness.trusted()
        if listed:
            self.refresh_index()
        rescued = 0
        if not records:  # the common case: each blob need only be indexed (a million: 1 s)
            index, pending = self._index, self._pending
            for raw in ids:
                if raw in pending or Digest(raw) in index:
                    continue
                if not listed:  # not deduplicated from this index: list it once
                    self.refresh_index()
                    listed = True
                    if Digest(raw) in index:
                        continue
                raise ConflictError(
                        f"blob {raw.hex()} was garbage-collected while this version was "
                        "being written; nothing was committed: log it again"
                    )
            self._checked_at = started
            return 0
        for raw in ids:
            if raw in self._pending:
                continue
            blob_id = Digest(raw)
            location = self._index.lookup(blob_id)
            if location is None and not listed:  # not deduplicated from this index
                self.refresh_index()
                listed = True
                location = self._index.lookup(blob_id)
            if location is None:
                raise ConflictError(
                    f"blob {blob_id.hex} was garbage-collected while this version was being "
                    "written; nothing was committed: log it again"
                )
            doomed = [r for r in records if r.condemns(location.pack, raw)]
            if not doomed:
                continue
            if any(r.purge for r in doomed):
                raise ConflictError(
                    f"blob {blob_id.hex} is being purged from the store; nothing was "
                    "committed: log the files again (they will be stored anew)"
                )
            try:
                self.copy_blob(blob_id, location)
            except NotFoundError:
                raise ConflictError(
                    f"blob {blob_id.hex} was garbage-collected while this version was being "
                    "written; nothing was committed: log it again"
                ) from None
            rescued += 1
        if rescued:
            self.flush()
        self._checked_at = started
        return rescued

    def _with_bases(self, ids: Iterable[bytes]) -> Iterator[bytes]:
        """``ids``, then the bases of those that have a delta copy (design §15: a
        version naming a delta needs its bases stored too)."""
        index = self._index
        if not index.has_deltas():
            yield from ids
            return
        extra: set[bytes] = set()
        for raw in ids:
            yield raw
            if index.is_delta(raw):
                extra |= index.all_bases(raw)
        yield from extra

    def commit_guard(self) -> None:
        """Call right before the commit point: re-checks when the last check is too old."""
        window = self.config.commit_window / 2
        if self._checked_at is None or time.monotonic() - self._checked_at > window:
            self.prepare_commit()

    def copy_blob(self, blob_id: Digest, location: BlobLocation,
                  bases: tuple[Digest, ...] | None = None) -> None:
        """Copy one verified blob's envelope as is into the open pack (rescue, repack);
        a delta keeps its ``bases`` (default: as the index names them).

        A blob already copied since the last flush is not copied twice (a repack
        of several packs holding the same blob keeps one copy).
        """
        if blob_id.raw in self._pending:
            return
        data = self.backend.get_range(
            pack_key(self.domain, location.pack), location.offset, location.length
        )
        if location.kind is Kind.CHUNK_DELTA and bases is None:
            bases = self._index.bases(blob_id, location)
        self._reader.verified(blob_id, location, data, bases=bases)
        self._batch.add_sealed(blob_id, location.kind, data[:HEADER_SIZE],
                               data[HEADER_SIZE:], location.raw_length, bases or ())
        self._pending.add(blob_id.raw)
        if self._batch.size >= self.config.pack_target:
            self._close_pack()

    # -- reading -----------------------------------------------------------------

    def refresh_index(self) -> int:
        """Merge index objects written by others since the last look; returns how many.

        An index object that vanishes between the listing and its read was
        replaced by a gc sweep (design §15): list again and merge its successors.
        """
        fetched = 0
        started = time.monotonic()
        for _ in range(_REFRESH_ATTEMPTS):
            listed = []
            for key in self.backend.list(index_prefix(self.domain)):
                index_id = parse_id_key(key)
                if index_id is not None:
                    listed.append(index_id)
            merged, vanished = self._index.refresh(listed, self._fetch_indexes)
            fetched += merged
            if not vanished:
                break
        self._index_loaded = True
        self._freshness.listed(started)
        return fetched

    def _fetch_indexes(self, ids: list[Digest]) -> Iterator[tuple[Digest, bytes | None]]:
        keys = [index_key(self.domain, i) for i in ids]
        yield from zip(ids, self._pool.map(self._get_if_present, keys), strict=True)

    def _get_if_present(self, key: str) -> bytes | None:
        try:
            return self.backend.get(key)
        except NotFoundError:
            return None

    def _ensure_index(self) -> None:
        if not self._index_loaded:
            self.refresh_index()

    def has_blob(self, blob_id: Digest) -> bool:
        self._ensure_index()
        return blob_id in self._index or blob_id.raw in self._pending

    def locate(self, blob_id: Digest) -> BlobLocation:
        """Where a committed blob is; refreshes the index once before giving up."""
        self._ensure_index()
        if blob_id.raw in self._pending:
            self.flush()
        location = self._index.lookup(blob_id)
        if location is None:
            self.refresh_index()
            location = self._index.lookup(blob_id)
        if location is None:
            raise NotFoundError(
                f"blob {blob_id.hex} is not in the store at {self.backend.url}: "
                "it was never written or has been garbage-collected"
            )
        return location

    def read_blob(self, blob_id: Digest) -> bytes:
        """The verified plaintext of one blob (:class:`~.blobreads.BlobReader`)."""
        return self._reader.read_blob(blob_id)

    def read_blobs(self, ids: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        """Verified blobs in the order asked, fetched concurrently (neighbours share a
        range request; :meth:`~.blobreads.BlobReader.read_blobs`)."""
        return self._reader.read_blobs(ids)

    def read_many(self, ids: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        """Verified blobs in storage order (pack, offset), so neighbours share reads."""
        return self._reader.read_many(ids)

    def iter_file(self, ref: FileRef) -> Iterator[bytes]:
        """The file's bytes chunk by chunk, every chunk verified against its id."""
        return self._reader.iter_file(ref)

    def iter_files(self, refs: Sequence[FileRef], *, check: bool = False,
                   caller_hashes: int = 0) -> Iterator[Iterator[bytes]]:
        """For each file in order, an iterator of its verified chunks, read as one stream
        (:meth:`~.blobreads.BlobReader.iter_files`: ``check`` and ``caller_hashes``)."""
        return self._reader.iter_files(refs, check=check, caller_hashes=caller_hashes)

    def read_file(self, ref: FileRef) -> bytes:
        """A whole file in memory (for small files; stream big ones with iter_file)."""
        return self._reader.read_file(ref)

    @property
    def supports_placed_writes(self) -> bool:
        """Whether :meth:`read_file_into` is worth it: a local store, whose reads are opened
        on the I/O threads (a remote store's are streamed: use :meth:`iter_files`), on
        an OS with ``pwrite`` (not Windows)."""
        return self._vectored and hasattr(os, "pwrite")

    def read_file_into(self, ref: FileRef, fd: int,
                       progress: Callable[[int], None] | None = None) -> None:
        """Write a file's bytes into ``fd`` from offset 0, checked against its digest
        (IntegrityError otherwise; the caller uses the file only if this returned):
        :meth:`~.blobreads.BlobReader.read_file_into`."""
        return self._reader.read_file_into(ref, fd, progress)

    def verify_pack(self, pack_id: Digest) -> tuple[BlobEntry, ...]:
        """Read a whole pack, check it against its id and every blob in it."""
        key = pack_key(self.domain, pack_id)
        data = self.backend.get(key)
        entries = check_pack(data, pack_id, what=f"pack {key}", keys=self.keys)
        for e in entries:
            loc = BlobLocation(pack_id, e.kind, e.offset, e.length, e.raw_length)
            self._reader.verified(e.id, loc, data[e.offset : e.offset + e.length],
                                  bases=e.bases)
        return entries

    def store_full(self, blob_id: Digest, plaintext: bytes) -> None:
        """Store a plain ``CHUNK`` copy of a chunk the index holds (a delta whose base a
        purge wipes, design §16): written even though its id is indexed."""
        self._check_open()
        if blob_id.raw in self._pending or self.blob_id(plaintext) != blob_id:
            raise ValueError("store_full takes a chunk's verified plaintext, once a session")
        self._batch.add(blob_id, Kind.CHUNK, plaintext, adaptive=False,
                        compression=(self.config.big_chunks.compression
                                     if self.config.big_chunks is not None else None))
        self._pending.add(blob_id.raw)
        if self._batch.size >= self.config.pack_target:
            self._close_pack()

    @property
    def index(self) -> MergedIndex:
        self._ensure_index()
        return self._index

    def _check_open(self) -> None:
        if self._closed:
            raise ArtifactStoreError("the object store is closed: open the store again")


def _blobs_of(records: Iterable[Condemnation]) -> set[bytes]:
    found: set[bytes] = set()
    for record in records:
        for blobs in record.packs.values():
            found |= blobs
    return found


def _upload_error(future: Future[FinishedPack]) -> ArtifactStoreError:
    exc = future.exception()
    assert exc is not None
    return _as_store_error(exc)


def _as_store_error(exc: BaseException) -> ArtifactStoreError:
    if isinstance(exc, ArtifactStoreError):
        return exc
    return ArtifactStoreError(f"upload failed: {exc}; nothing was committed, retry")
