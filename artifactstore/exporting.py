"""Exporting a version: its plain files and a portable manifest (docs/export-format.md).

Vocabulary: the **target** of an export is a folder, or a tar file when its name
ends in ``.tar``, ``.tar.gz`` or ``.tgz`` (the **kind**: ``dir``, ``tar``,
``tar.gz``). Both hold the same layout: ``artifactstore-export.json`` at the
root, the files under ``files/``.

Write order: a folder gets its files first and the manifest last (renamed into
place), so an interrupted export has no manifest and no importer takes it for a
whole one. A tar file is written under a temporary name with the manifest as
its first member (an importer can check it before reading any file) and renamed
when complete. File bytes are streamed from the store chunk by chunk, each chunk
verified against its id and each file against its BLAKE3 digest, so memory does
not grow with file size and a damaged store never yields a plausible export.

:func:`import_export` (the other direction) lives in :mod:`artifactstore.transfer.importing`
and is re-exported here.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal

from artifactstore.core.digest import Hasher
from artifactstore.core.errors import (
    AlreadyExistsError,
    ArtifactStoreError,
    IntegrityError,
    NotFoundError,
    local_write_error,
)
from artifactstore.model.exports import (
    FILES_DIR,
    MANIFEST_NAME,
    ExportedFile,
    ExportedInput,
    ExportedReference,
    ExportedRun,
    ExportManifest,
)
from artifactstore.model.paths import join_under
from artifactstore.model.tree import Entry, FileEntry
from artifactstore.objects.blobrefs import ChunkRef
from artifactstore.objects.store import Progress
from artifactstore.records.runs import parse_time
from artifactstore.records.versions import default_writer, now
from artifactstore.transfer.importing import ImportReport, import_export

if TYPE_CHECKING:
    from artifactstore.api.store import Store
    from artifactstore.repository.version import ArtifactVersion

__all__ = ["ImportReport", "build_manifest", "export_kind", "export_version", "import_export"]

ExportKind = Literal["dir", "tar", "tar.gz"]

_WINDOW: Final = 4 << 20  # bytes of chunks fetched at once: memory use, not file size
_GZIP_LEVEL: Final = 6  # zlib's default: level 9 is several times slower for ~1% less


def export_kind(target: str | os.PathLike[str]) -> ExportKind:
    """``tar.gz`` for ``*.tar.gz``/``*.tgz``, ``tar`` for ``*.tar``, else ``dir``."""
    name = Path(target).name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    return "tar" if name.endswith(".tar") else "dir"


# -- the manifest ---------------------------------------------------------------------------


def build_manifest(store: Store, version: ArtifactVersion,
                   entries: Sequence[Entry] | None = None) -> ExportManifest:
    """The manifest of ``version``: its facts, entries (read unless given) and lineage
    (from the catalog)."""
    from artifactstore import __version__

    files: list[ExportedFile] = []
    references: list[ExportedReference] = []
    for entry in version.files() if entries is None else entries:
        if isinstance(entry, FileEntry):
            files.append(ExportedFile(entry.path, entry.size, entry.digest.hex, entry.mode,
                                      entry.media_type))
        else:
            references.append(ExportedReference(
                entry.path, entry.uri, entry.size, entry.etag, entry.version_id,
                None if entry.digest is None else entry.digest.hex, entry.media_type))
    record = version.record
    return ExportManifest(
        project=record.project, name=version.name, number=version.number, type=version.type,
        description=version.description, metadata=dict(version.metadata),
        created_at=version.created_at, created_by=version.created_by, digest=version.digest,
        size=version.size, aliases=tuple(a for a in version.aliases if a != "latest"),
        files=tuple(files), references=tuple(references), run_id=record.run,
        run=None if record.run is None else _producer(store, version, record.run),
        exported_at=now(), exported_by=default_writer(), generator=f"artifactstore {__version__}",
    )  # fmt: skip


def _producer(store: Store, version: ArtifactVersion, run_id: str) -> ExportedRun | None:
    """The producing run and its inputs' digests; None when its records are gone."""
    try:
        run = store.get_run(run_id)
    except NotFoundError:
        return None
    graph = store.upstream(version.ref, depth=1)  # the version, its runs and their inputs
    inputs = []
    for ref in run.inputs:
        node: dict[str, Any] = graph.nodes[ref] if ref in graph else {"missing": True}
        known = not node["missing"]
        inputs.append(ExportedInput(ref, node["type"] if known else None,
                                    node["digest"] if known else None))
    return ExportedRun(
        id=run.run_id, name=run.name, job_type=run.job_type, tags=run.tags,
        config=dict(run.config), summary=dict(run.summary),
        code=None if run.code is None else dict(run.code), status=run.status, error=run.error,
        started_at=run.started_at, ended_at=run.ended_at, by=run.by, inputs=tuple(inputs),
    )  # fmt: skip


# -- writing --------------------------------------------------------------------------------


def export_version(
    store: Store,
    version: ArtifactVersion,
    target: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> ExportManifest:
    """Write ``version`` to the folder or tar file ``target``; returns its manifest.

    An existing non-empty folder or an existing file is refused
    (AlreadyExistsError) unless ``force``, which replaces the manifest and
    ``files/`` of the folder (nothing else in it) or the file.
    """
    every = version.files()
    manifest = build_manifest(store, version, every)
    data = manifest.to_bytes()  # refuses metadata JSON cannot carry, before writing
    path = Path(target)
    kind = export_kind(path)
    entries = [e for e in every if isinstance(e, FileEntry)]
    read = _reader(store, version, progress)
    made = _outermost_missing(path) if kind == "dir" else None
    try:
        if kind == "dir":
            _write_dir(path, data, entries, read, force)
        else:
            _write_tar(path, kind, data, manifest, entries, read, force)
    except BaseException as exc:
        if kind == "dir" and not isinstance(exc, AlreadyExistsError):
            _remove_partial(path, made)  # a full disk gets its space back
        if not isinstance(exc, OSError) or isinstance(exc, ArtifactStoreError):
            raise
        raise local_write_error(exc, f"cannot export to {path}", "export elsewhere") from None
    return manifest


def _outermost_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None: it exists)."""
    missing = None
    while not os.path.lexists(path) and path != path.parent:
        missing, path = path, path.parent
    return missing


def _remove_partial(root: Path, made: Path | None) -> None:
    """After a failed export into the folder ``root``: remove what it wrote (``files/``
    and the manifest's temp file; the folders it made), never what was there before."""
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
        return
    files = root / FILES_DIR
    if files.is_dir() and not files.is_symlink():
        shutil.rmtree(files, ignore_errors=True)
    with contextlib.suppress(OSError):
        (root / f".{MANIFEST_NAME}.{os.getpid()}.tmp").unlink()


Read = Callable[[FileEntry], Iterator[bytes]]


def _reader(store: Store, version: ArtifactVersion, progress: Progress | None) -> Read:
    objects = store.objects_for(version.record)

    def read(entry: FileEntry) -> Iterator[bytes]:
        """The file's bytes; IntegrityError unless they hash to its digest."""
        hasher = Hasher()
        try:
            for window in _windows(entry.chunks):
                blobs = objects.read_blobs(c.id for c in window)
                for chunk, (_, data) in zip(window, blobs, strict=True):
                    if len(data) != chunk.length:
                        raise IntegrityError(f"chunk {chunk.id.hex} has {len(data)} bytes, "
                                             f"the file lists {chunk.length}")
                    hasher.update(data)
                    if progress is not None:
                        progress(len(data))
                    yield data
        except IntegrityError as exc:
            raise IntegrityError(f"{version.ref}:{entry.path}: {exc}") from None
        if hasher.digest() != entry.digest:
            raise IntegrityError(
                f"{version.ref}:{entry.path} does not match its digest: the store is damaged; "
                "run 'artifactstore verify'"
            )

    return read


def _windows(chunks: Sequence[ChunkRef]) -> Iterator[Sequence[ChunkRef]]:
    """Runs of chunks of about :data:`_WINDOW` bytes: each is fetched with few range
    requests, and only one is held at a time (``iter_file`` keeps up to
    ``concurrency`` x 16 MiB in flight, more than small exports need)."""
    start = total = 0
    for i, chunk in enumerate(chunks):
        total += chunk.length
        if total >= _WINDOW:
            yield chunks[start : i + 1]
            start, total = i + 1, 0
    if start < len(chunks):
        yield chunks[start:]


def _write_dir(root: Path, manifest: bytes, entries: list[FileEntry], read: Read,
               force: bool) -> None:
    if root.exists() and not root.is_dir():
        raise AlreadyExistsError(f"{root} is a file: name a folder, or FILE.tar for a tar file")
    if root.is_dir() and any(root.iterdir()):
        if not force:
            raise AlreadyExistsError(
                f"{root} is not empty: name a new folder, or use --force to replace the "
                f"export in it ({MANIFEST_NAME} and {FILES_DIR}/)"
            )
        _remove_export(root)
    # The manifest goes last: a folder without one is not an export (see the docstring).
    files_root = root / FILES_DIR
    files_root.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        destination = join_under(files_root, entry.path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with _create(destination) as out:
            for data in read(entry):
                out.write(data)
        os.chmod(destination, entry.mode)
    temp = root / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    with _create(temp) as out:
        out.write(manifest)
    os.replace(temp, root / MANIFEST_NAME)


def _remove_export(root: Path) -> None:
    """What ``--force`` replaces: the manifest and ``files/``, nothing else."""
    with contextlib.suppress(FileNotFoundError):
        (root / MANIFEST_NAME).unlink()
    files = root / FILES_DIR
    if files.is_symlink() or files.is_file():
        files.unlink()
    elif files.is_dir():
        shutil.rmtree(files)


@contextlib.contextmanager
def _create(path: Path) -> Iterator[IO[bytes]]:
    try:
        out = open(path, "xb")  # noqa: SIM115 - closed below, errors mapped
    except FileExistsError:
        raise AlreadyExistsError(f"{path} already exists: export to a new folder") from None
    except OSError as exc:
        raise local_write_error(exc, f"cannot write {path}", "export elsewhere") from None
    with out:
        yield out


def _write_tar(path: Path, kind: ExportKind, manifest: bytes, facts: ExportManifest,
               entries: list[FileEntry], read: Read, force: bool) -> None:
    if path.is_dir():
        raise AlreadyExistsError(f"{path} is a folder: name a file, or export into the folder")
    if path.exists() and not force:
        raise AlreadyExistsError(f"{path} exists: name a new file, or use --force to replace it")
    if not path.parent.is_dir():
        raise NotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mtime = _timestamp(facts.created_at)
    try:
        with _create(temp) as raw:
            with contextlib.ExitStack() as stack:
                stream: IO[bytes] | gzip.GzipFile = raw
                if kind == "tar.gz":
                    # mtime 0 and no name in the gzip header: equal exports, equal bytes.
                    stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                           compresslevel=_GZIP_LEVEL)
                    stack.callback(stream.close)
                tar = stack.enter_context(
                    tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT))
                tar.addfile(_member(MANIFEST_NAME, len(manifest), 0o644, mtime),
                            io.BytesIO(manifest))
                for entry in entries:
                    chunks = read(entry)
                    tar.addfile(_member(f"{FILES_DIR}/{entry.path}", entry.size, entry.mode,
                                        mtime), _IterReader(chunks))
                    for _ in chunks:  # tarfile stops at the size: run the digest check
                        pass
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _member(name: str, size: int, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, mode, mtime, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _timestamp(iso: str) -> int:
    try:
        return int(parse_time(iso).timestamp())
    except ValueError:
        return 0


class _IterReader(io.RawIOBase):
    """A read-only file over an iterator of byte strings. ``read(n)`` returns ``n``
    bytes unless the data ends: tarfile takes a short read for the end of data."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view):
            if not self._left:
                data = next(self._chunks, None)
                if data is None:
                    break
                self._left = memoryview(data)
            n = min(len(view) - done, len(self._left))
            view[done : done + n] = self._left[:n]
            self._left = self._left[n:]
            done += n
        return done
