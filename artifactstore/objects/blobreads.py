"""Reading blobs and files out of packs: the read side of the object store.

Vocabulary: a *read* is one range request over neighbouring blobs of one pack (a
*group*, coalesced while the gap between them stays under :data:`_COALESCE_GAP`); a
local store's reads are opened (decrypted, decompressed, checked) on the I/O threads, a
remote store's are streamed (:class:`~.streamedread.StreamedRead`: the same one request,
its blobs opened on its I/O thread as their bytes arrive). A blob is *verified* when its
envelope opened under its id and (unless a file digest covers it) its plaintext hashed
to its id; a file is checked against its digest before its iterator ends. A *placed*
file (:meth:`BlobReader.read_file_into`, a local store's big file in a download) is
opened by the I/O threads into reused buffers, written at its offsets and hashed from
them in file order, and checked before the call returns. A *delta* chunk (kind
``CHUNK_DELTA``, objects/deltas.py) is opened with its bases' plaintexts, each read
through :meth:`BlobReader.read_blob` (checked) and kept a while in a small cache, so
the deltas of one file read each base once.

:class:`BlobReader` holds no state of its own beyond its settings: the store
(:class:`~.store.ObjectStore`) gives it the backend, the domain and keys, its thread
pools and how to locate a blob (its merged index, pending writes and refreshes), and
delegates its read methods to it. A pack that vanished (gc repacked it) is read again
from the blob's new place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

from artifactstore.backends.base import Backend
from artifactstore.core.digest import Digest, Hasher, hash_bytes
from artifactstore.core.errors import IntegrityError, NotFoundError
from artifactstore.core.heap import trim_heap
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.deltas import BASES_PER_READ, BaseReader
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import Kind, open_envelope
from artifactstore.objects.index import BlobLocation
from artifactstore.objects.layout import pack_key
from artifactstore.objects.placedwrite import PLACED_READ, write_placed
from artifactstore.objects.streamedread import StreamedRead

__all__ = ["BlobReader"]

# Adjacent blobs of one pack are fetched in one range request when the gap
# between them is small; a request never spans more than this many bytes.
_COALESCE_GAP = 256 << 10
#: a local store's reads: one holds at most this many bytes read plus plaintext opened
#: from them (the I/O threads hold both while opening), and up to three are in flight,
#: which keeps both cores busy; a remote store's reads span up to a pack (a request
#: costs more than memory there) and are streamed, so they are counted by number
_LOCAL_READ = 4 << 20
_LOCAL_READ_WINDOW = 3 * _LOCAL_READ
#: remote (streamed) reads in flight at once, and what one holds at most (its queue of
#: opened pieces, streamedread.py)
_REMOTE_STREAMS = 2
_STREAM_HOLDS = 4 << 20
#: a checked file's chunks go to the digest thread in batches of about this size
_DIGEST_BATCH = 4 << 20


class BlobReader:
    """Verified blobs and files of one domain of ``backend``; ``locate`` finds a
    committed blob (refreshing the index once before giving up), ``refresh`` re-lists
    the index (a pack vanished), ``blob_id`` is the domain's (keyed) id of a plaintext.
    ``vectored``: a local store (reads opened on the I/O threads, bounded in bytes);
    else reads are streamed, bounded in number. ``read_window``: the longest read.
    ``bases``: the bases the index names for a delta copy at a location."""

    def __init__(self, backend: Backend, domain: str, keys: DomainKeys | None, *,
                 locate: Callable[[Digest], BlobLocation], refresh: Callable[[], object],
                 bases: Callable[[Digest, BlobLocation], tuple[Digest, ...]],
                 blob_id: Callable[[bytes], Digest], pool: ThreadPoolExecutor,
                 digest_pool: ThreadPoolExecutor, concurrency: int, vectored: bool,
                 read_window: int) -> None:
        self._backend = backend
        self._domain = domain
        self._keys = keys
        self._locate = locate
        self._refresh = refresh
        self._blob_id = blob_id
        self._pool = pool
        self._digest_pool = digest_pool
        self._concurrency = concurrency
        self._vectored = vectored
        self._read_window = read_window
        #: the bases of delta chunks: read, checked, cached, fetched ahead (deltas.py)
        self.bases: BaseReader[BlobLocation] = BaseReader(locate=locate, read_blob=self.read_blob,
                                read_many=self.read_many, bases=bases)

    def read_blob(self, blob_id: Digest) -> bytes:
        """The verified plaintext of one blob.

        A pack that vanished (gc repacked it) makes the index refresh once and
        the read retry from the blob's new pack.
        """
        location = self._locate(blob_id)
        try:
            data = self._backend.get_range(
                pack_key(self._domain, location.pack), location.offset, location.length
            )
        except NotFoundError:
            self._refresh()
            location = self._locate(blob_id)
            data = self._backend.get_range(
                pack_key(self._domain, location.pack), location.offset, location.length
            )
        return self.verified(blob_id, location, data)

    def verified(self, blob_id: Digest, location: BlobLocation,
                  data: bytes | memoryview, *, check_id: bool = True,
                  bases: tuple[Digest, ...] | None = None) -> bytes:
        """The plaintext of a blob's stored bytes: opened (decrypted with its id bound,
        decompressed within its length) and, with ``check_id``, hashed to its id. A
        checked file read (:meth:`iter_files` with ``check``) passes False: its bytes
        are hashed to the file's digest before anything is published, which checks
        every chunk of it, so a second BLAKE3 pass over each chunk buys nothing.
        A delta copy is opened with its ``bases`` (default: as the index names them)."""
        what = f"blob {blob_id.hex} in pack {pack_key(self._domain, location.pack)}"
        if len(data) != location.length:
            raise IntegrityError(
                f"{what} is truncated ({len(data)} of {location.length} bytes at offset "
                f"{location.offset}): the pack is damaged; run 'artifactstore verify'"
            )
        joined = None
        if location.kind is Kind.CHUNK_DELTA:
            joined = self.bases.dictionary(blob_id, location, what, bases)
            check_id = True  # a wrong base is named here, not as a file digest mismatch
        _, plaintext = open_envelope(
            data, expected_kind=location.kind, raw_length=location.raw_length, what=what,
            keys=self._keys, binding=blob_id.raw, dictionary=joined,
        )
        if check_id and self._blob_id(plaintext) != blob_id:
            raise IntegrityError(
                f"{what} does not match its id: the pack is damaged; run 'artifactstore verify'"
            )
        return plaintext

    def read_blobs(self, ids: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        """Verified blobs in the order asked, fetched concurrently.

        Neighbouring blobs of one pack are read with one range request (up to a
        whole pack from a remote store, a few MiB from a local one); while the
        caller consumes one read, the next is in flight. A local store's blobs are
        opened in the I/O threads (the second core decrypts and verifies); a remote
        store's read is streamed (:class:`StreamedRead`: the same one request, its
        blobs' bytes handed over as they arrive) and each blob opened as it is
        consumed, so a read holds a few MiB whatever the pack size (peak RSS).
        """
        for blob_id, data, _ in self.blob_stream(ids, frozenset()):
            yield blob_id, data

    def blob_stream(self, ids: Iterable[Digest], plain: frozenset[bytes], *,
                     check_ids: bool = True
                     ) -> Iterator[tuple[Digest, bytes, Digest | None]]:
        """:meth:`read_blobs`, with the plain BLAKE3 digest of each blob whose id is in
        ``plain`` when the I/O thread that opened it took it (a local store; else None)."""
        window: list[tuple[list[tuple[Digest, BlobLocation]], Future[Any] | StreamedRead]] = []
        in_flight = 0
        limit = _LOCAL_READ_WINDOW if self._vectored else self._read_window
        # A streamed read holds a few MiB whatever its span: remote reads are bounded
        # by their number (several packs arrive at once, as restic reads them).
        reads = self._concurrency if self._vectored else min(self._concurrency,
                                                              _REMOTE_STREAMS)
        try:
            for group in self._coalesce(ids, _LOCAL_READ):
                read: Future[Any] | StreamedRead
                if self._vectored:
                    read = self._pool.submit(self._read_and_open, group, plain, check_ids)
                else:  # remote: streamed, so a read holds a few MiB, not a pack
                    read = StreamedRead(self._backend, pack_key(self._domain, group[0][1].pack),
                                        [(loc.offset, loc.length) for _, loc in group],
                                        self._pool,
                                        partial(self._open_span, group, plain, check_ids))
                window.append((group, read))
                in_flight += _cost(group, opened=self._vectored, streamed=not self._vectored)
                while window and (len(window) >= reads or in_flight > limit):
                    group, read = window[0]
                    in_flight -= _cost(group, opened=self._vectored,
                                       streamed=not self._vectored)
                    yield from self._group_result(group, read, check_ids)
                    del window[0], group, read
                    self._after_read()
            while window:
                yield from self._group_result(*window[0], check_ids)
                del window[0]
        finally:  # a consumer that stopped early: the streams still open stop
            for _, read in window:
                if isinstance(read, StreamedRead):
                    read.cancel()

    def _after_read(self) -> None:
        """A remote store's read (up to a whole pack) was consumed and freed: give the
        heap back (glibc keeps such buffers mapped after the first, core/heap.py)."""
        if not self._vectored:
            trim_heap()

    def _group_result(
        self, group: list[tuple[Digest, BlobLocation]], future: Future[Any] | StreamedRead,
        check_ids: bool,
    ) -> Iterator[tuple[Digest, bytes, Digest | None]]:
        if isinstance(future, StreamedRead):
            return self._streamed_result(group, future, check_ids)
        try:
            result = future.result()
        except NotFoundError:  # the pack was repacked by gc: read from the new one
            result = [(blob_id, self.read_blob(blob_id), None) for blob_id, _ in group]
        if isinstance(result, list):
            return iter(result)
        return ((i, data, None) for i, data in self._opened_group(group, result, check_ids))

    def _open_span(self, group: list[tuple[Digest, BlobLocation]], plain: frozenset[bytes],
                   check_ids: bool, index: int, data: bytes | memoryview,
                   ) -> tuple[Digest, bytes, Digest | None]:
        """A streamed read's blob opened and checked on its I/O thread (as a local
        store's in :meth:`_read_and_open`), with its plain digest when asked."""
        blob_id, loc = group[index]
        opened = self.verified(blob_id, loc, data, check_id=check_ids)
        return blob_id, opened, hash_bytes(opened) if blob_id.raw in plain else None

    def _streamed_result(
        self, group: list[tuple[Digest, BlobLocation]], read: StreamedRead, check_ids: bool,
    ) -> Iterator[tuple[Digest, bytes, Digest | None]]:
        """A remote read's blobs, each opened and checked as its bytes come (on the
        read's I/O thread: :meth:`_open_span`)."""
        done = 0
        try:
            for item in read.blobs():
                yield item
                done += 1
        except NotFoundError:  # the pack was repacked by gc: read from the new one
            for blob_id, _ in group[done:]:
                yield blob_id, self.read_blob(blob_id), None
        finally:
            read.cancel()

    def _coalesce(
        self, ids: Iterable[Digest], limit: int
    ) -> Iterator[list[tuple[Digest, BlobLocation]]]:
        """Runs of neighbouring blobs, each read at once: its span, plus with a local
        store the plaintext opened from it (held beside the bytes read), <= ``limit``
        (one blob alone may exceed it)."""
        group: list[tuple[Digest, BlobLocation]] = []
        raw = 0
        bases: dict[Digest, int] = {}  # the bases of the group's deltas, and their sizes
        for blob_id in ids:
            loc = self._locate(blob_id)
            delta = loc.kind is Kind.CHUNK_DELTA
            if group:
                first, last = group[0][1], group[-1][1]
                end = last.offset + last.length
                span = loc.offset + loc.length - first.offset
                if (
                    loc.pack != last.pack
                    or not end <= loc.offset <= end + _COALESCE_GAP
                    or span > self._read_window
                    or (self._vectored and span + raw + loc.raw_length > limit)
                    or (delta and sum(bases.values()) >= BASES_PER_READ)
                ):
                    self.bases.prefetch(bases)
                    yield group
                    group, raw, bases = [], 0, {}
            group.append((blob_id, loc))
            raw += loc.raw_length
            if delta:
                self.bases.plan(blob_id, loc, bases)
        if group:
            self.bases.prefetch(bases)
            yield group

    def _read_group(self, group: list[tuple[Digest, BlobLocation]]) -> bytes:
        """The bytes of one coalesced range read."""
        first, last = group[0][1], group[-1][1]
        start = first.offset
        return self._backend.get_range(
            pack_key(self._domain, first.pack), start, last.offset + last.length - start
        )

    def _read_and_open(
        self, group: list[tuple[Digest, BlobLocation]], plain: frozenset[bytes],
        check_ids: bool,
    ) -> list[tuple[Digest, bytes, Digest | None]]:
        # The plain digests asked for are taken here, on the second core, from the
        # bytes in hand (a one-chunk file's digest is its chunk's).
        return [(blob_id, data, hash_bytes(data) if blob_id.raw in plain else None)
                for blob_id, data in self._opened_group(group, self._read_group(group),
                                                        check_ids)]

    def _opened_group(
        self, group: list[tuple[Digest, BlobLocation]], data: bytes, check_ids: bool = True,
    ) -> Iterator[tuple[Digest, bytes]]:
        start = group[0][1].offset
        view = memoryview(data)  # slices, not copies: each blob is opened in place
        for blob_id, loc in group:
            yield blob_id, self.verified(
                blob_id, loc, view[loc.offset - start : loc.offset - start + loc.length],
                check_id=check_ids,
            )

    def read_many(self, ids: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        """Verified blobs in storage order (pack, offset), so neighbours share reads."""
        located = sorted(((self._locate(i), i) for i in dict.fromkeys(ids)),
                         key=lambda li: (li[0].pack.raw, li[0].offset))
        return self.read_blobs(i for _, i in located)

    def iter_file(self, ref: FileRef) -> Iterator[bytes]:
        """The file's bytes chunk by chunk, every chunk verified against its id."""
        return self._take_file(ref, self.blob_stream((c.id for c in ref.chunks), frozenset()))

    def iter_files(self, refs: Sequence[FileRef], *, check: bool = False,
                   caller_hashes: int = 0) -> Iterator[Iterator[bytes]]:
        """For each file in order, an iterator of its verified chunks; the chunks of all
        files are read as one stream, so neighbouring files share range requests.

        With ``check`` each file's bytes are checked against its digest before its
        iterator ends (IntegrityError instead), hashed from the bytes read: a
        one-chunk file's by the I/O thread that opened it (a local store), before
        any byte is yielded; a longer file's in batches on the digest thread. Its
        chunks are then not each hashed to their ids as well (they are opened and,
        in an encrypted domain, authenticated with their ids bound): the caller must
        not use a file's bytes before its iterator ended without error (a download
        publishes a file only then). Each file's iterator must be consumed before
        the next is taken.

        ``caller_hashes``: with ``check``, a file of more than one chunk and at most
        this many bytes is not hashed here: the caller hashes its bytes to its digest
        before using them (a download's writer thread does, off the main thread).
        """
        plain = frozenset(r.chunks[0].id.raw for r in refs
                          if check and len(r.chunks) == 1)
        blobs = self.blob_stream((c.id for ref in refs for c in ref.chunks), plain,
                                  check_ids=not check)
        for ref in refs:
            yield self._take_file(ref, blobs, check=check and (
                len(ref.chunks) == 1 or ref.size > caller_hashes))

    def _take_file(self, ref: FileRef,
                   blobs: Iterator[tuple[Digest, bytes, Digest | None]], *,
                   check: bool = False) -> Iterator[bytes]:
        size = 0
        digest = None
        if check and len(ref.chunks) > 1:  # a small file's chunks are hashed right here
            digest = _FileDigest(self._digest_pool if ref.size >= _DIGEST_BATCH else None)
        for chunk_ref in ref.chunks:
            _, data, plain = next(blobs)
            if len(data) != chunk_ref.length:
                raise IntegrityError(
                    f"chunk {chunk_ref.id.hex} has {len(data)} bytes, the file lists "
                    f"{chunk_ref.length}"
                )
            size += len(data)
            if check and digest is None:  # the file's one chunk (its id not checked)
                if plain is None:
                    plain = hash_bytes(data)
                if plain != ref.digest:
                    raise _digest_mismatch(ref)
            elif digest is not None:
                digest.update(data)
            yield data
        if size != ref.size:
            raise IntegrityError(f"file {ref.digest.hex} read {size} bytes, expected {ref.size}")
        if digest is not None and digest.result() != ref.digest:
            raise _digest_mismatch(ref)

    def read_file_into(self, ref: FileRef, fd: int,
                       progress: Callable[[int], None] | None = None) -> None:
        """Write a file's bytes into ``fd`` from offset 0 (a local store's big file), and
        check them against its digest: IntegrityError unless every byte matched. The
        caller must not use the file unless this returned.

        The chunks are read in runs of about :data:`~.placedwrite.PLACED_READ` bytes,
        opened by the I/O threads into reused buffers and written and hashed there in
        file order (:mod:`~.placedwrite`); a pack that gc moved meanwhile is looked up
        again and the file written once more.
        """
        reported = [0]  # bytes told to ``progress``: a second attempt tells only more

        def advance(position: int) -> None:
            if progress is not None and position > reported[0]:
                progress(position - reported[0])
                reported[0] = position

        for attempt in (1, 2):
            try:
                size, digest = write_placed(
                    ref, fd, advance, groups=self._coalesce((c.id for c in ref.chunks),
                                                            PLACED_READ),
                    read_group=self._read_group, pool=self._pool, domain=self._domain,
                    keys=self._keys, open_delta=self.verified)
                break
            except NotFoundError:  # a pack was repacked by gc: its chunks moved
                if attempt == 2:
                    raise
                self._refresh()
        if size != ref.size:
            raise IntegrityError(f"file {ref.digest.hex} read {size} bytes, expected {ref.size}")
        if digest != ref.digest:
            raise _digest_mismatch(ref)

    def read_file(self, ref: FileRef) -> bytes:
        """A whole file in memory (for small files; stream big ones with iter_file)."""
        data = b"".join(self.iter_file(ref))
        if hash_bytes(data) != ref.digest:
            raise IntegrityError(f"file {ref.digest.hex} does not match its digest")
        return data


def _span(group: list[tuple[Digest, BlobLocation]]) -> int:
    first, last = group[0][1], group[-1][1]
    return last.offset + last.length - first.offset


def _cost(group: list[tuple[Digest, BlobLocation]], *, opened: bool,
          streamed: bool = False) -> int:
    """Bytes a read holds: its span, and the plaintext when opened in the I/O thread;
    a streamed read at most a few pieces (its queue) whatever its span."""
    if streamed:
        return min(_span(group), _STREAM_HOLDS)
    return _span(group) + (sum(loc.raw_length for _, loc in group) if opened else 0)


def _digest_mismatch(ref: FileRef) -> IntegrityError:
    return IntegrityError(f"file {ref.digest.hex} does not match its digest: the store is "
                          "damaged; run 'artifactstore verify'")


class _FileDigest:
    """A file's plain digest taken from its chunks in order on ``pool`` (one thread),
    in batches of about :data:`_DIGEST_BATCH` bytes: BLAKE3 releases the GIL, so the
    consumer writes while the batch before is hashed. At most two batches are held.
    Without a pool, each chunk is hashed as it comes."""

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self._pool = pool
        self._hasher = Hasher()
        self._batch: list[bytes] = []
        self._held = 0
        self._pending: Future[None] | None = None

    def update(self, data: bytes) -> None:
        if self._pool is None:
            self._hasher.update(data)
            return
        self._batch.append(data)
        self._held += len(data)
        if self._held >= _DIGEST_BATCH:
            self._submit()

    def _submit(self) -> None:
        if self._pending is not None:
            self._pending.result()
        batch, self._batch, self._held = self._batch, [], 0
        assert self._pool is not None
        self._pending = self._pool.submit(_hash_all, self._hasher, batch)

    def result(self) -> Digest:
        if self._pool is None:
            return self._hasher.digest()
        self._submit()
        assert self._pending is not None
        self._pending.result()
        return self._hasher.digest()


def _hash_all(hasher: Hasher, batch: list[bytes]) -> None:
    for data in batch:
        hasher.update(data)
