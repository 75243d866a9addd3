"""Reading an export (a folder or a tar file) into verified local copies.

Vocabulary: an export's files are **copied** into a private scratch folder while
being hashed; a copy is **verified** when its size and BLAKE3 digest equal those
the manifest lists. :func:`read_export` yields a :class:`VerifiedExport` only
when every file the manifest lists is there and verified, and no file it does
not list is under ``files/``; otherwise it raises before the caller writes
anything. The scratch folder is removed when the block ends.

Why copies, not the export's own files: the import logs the copies, so the
bytes that were checked are the bytes that get stored (a file changed in the
export folder after its check cannot slip in), and a copy gets the mode the
manifest lists, so the imported version's content can equal the original's.
The price is temporary space as large as the export's files (``$TMPDIR``).

Untrusted input: a symbolic link, device or FIFO in ``files/``, a tar member
that is not a regular file, and any path :func:`validate_path` refuses are
errors; tar members are read as streams, never extracted.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import lzma
import os
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from artifactstore.core.digest import Hasher
from artifactstore.core.errors import (
    ArtifactStoreError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    StorageFullError,
)
from artifactstore.model.exports import (
    FILES_DIR,
    MANIFEST_NAME,
    ExportedFile,
    ExportManifest,
    parse_manifest,
)
from artifactstore.model.paths import validate_path
from artifactstore.objects.store import Progress

__all__ = ["MAX_MANIFEST_BYTES", "VerifiedExport", "read_export"]

MAX_MANIFEST_BYTES: Final = 256 << 20
"""Largest manifest read (about a million files); a bigger one is refused, not loaded."""

_BLOCK: Final = 1 << 20
#: what a damaged compressed stream raises while tarfile reads it
_STREAM_ERRORS: Final = (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError)
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


@dataclass(frozen=True, slots=True)
class VerifiedExport:
    """The manifest of an export and a verified copy of each of its files."""

    manifest: ExportManifest
    files: Mapping[str, Path]  # artifact path -> verified copy


@dataclass(frozen=True, slots=True)
class _Copy:
    path: Path
    size: int
    blake3: str


@contextlib.contextmanager
def read_export(
    source: str | os.PathLike[str],
    *,
    scratch_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Iterator[VerifiedExport]:
    """Check the export at ``source`` and copy its files; see the module docstring.

    NotFoundError when ``source`` does not exist; InvalidInputError when it is
    not an export or its manifest or a path is malformed (FormatError for a
    newer format version); IntegrityError when a file is missing, extra or
    differs from the manifest.
    """
    path = Path(source)
    if not path.exists():
        raise NotFoundError(f"{path} does not exist: name an export folder or tar file")
    with tempfile.TemporaryDirectory(prefix="artifactstore-import-", dir=scratch_dir) as tmp:
        copier = _Copier(Path(tmp), progress)
        if path.is_dir():
            manifest, copies = _read_dir(path, copier)
        else:
            manifest, copies = _read_tar(path, copier)
        yield VerifiedExport(manifest, _checked(manifest, copies, path))


class _Copier:
    """Copies streams into numbered scratch files, hashing them on the way."""

    def __init__(self, root: Path, progress: Progress | None) -> None:
        self._root = root
        self._progress = progress
        self._count = 0

    def copy(self, source: IO[bytes], limit: int | None, what: str) -> _Copy:
        """Copy ``source`` (at most ``limit`` + 1 bytes: enough to see it is too long)."""
        self._count += 1
        target = self._root / str(self._count)
        hasher = Hasher()
        size = 0
        try:
            out = open(target, "xb")  # noqa: SIM115 - closed below, errors mapped
        except OSError as exc:
            raise _scratch_error(target, exc) from None
        with out:
            while limit is None or size <= limit:
                try:
                    data = source.read(_BLOCK if limit is None else min(_BLOCK, limit + 1 - size))
                except OSError as exc:
                    if isinstance(exc, gzip.BadGzipFile):
                        raise  # the tar reader reports a damaged tar file
                    raise InvalidInputError(f"cannot read {what}: {exc.strerror or exc}") from None
                if not data:
                    break
                hasher.update(data)
                try:
                    out.write(data)
                except OSError as exc:
                    raise _scratch_error(target, exc) from None
                size += len(data)
                if self._progress is not None:
                    self._progress(len(data))
        return _Copy(target, size, hasher.digest().hex)


def _scratch_error(target: Path, exc: OSError) -> ArtifactStoreError:
    if exc.errno == errno.ENOSPC:
        return StorageFullError(
            f"no space left for the temporary copy of the export in {target.parent}: "
            "set TMPDIR to a folder with room for the export's files"
        )
    return InvalidInputError(f"cannot write the temporary copy {target}: {exc.strerror or exc}")


def _damaged(where: Path, what: str) -> IntegrityError:
    return IntegrityError(
        f"export {where}: {what}; it is damaged or was changed since it was written: "
        "export it again"
    )


def _checked(manifest: ExportManifest, copies: dict[str, _Copy], where: Path) -> dict[str, Path]:
    """Every listed file copied and equal to its listing, nothing else; modes applied."""
    listed = {f.path: f for f in manifest.files}
    extra = sorted(set(copies) - set(listed))
    if extra:
        raise _damaged(where, f"{FILES_DIR}/{extra[0]} is not listed in {MANIFEST_NAME}")
    result = {}
    for path, entry in listed.items():
        copy = copies.get(path)
        if copy is None:
            raise _damaged(where, f"{FILES_DIR}/{path} is missing")
        _compare(entry, copy, where)
        os.chmod(copy.path, entry.mode)
        result[path] = copy.path
    return result


def _compare(entry: ExportedFile, copy: _Copy, where: Path) -> None:
    if copy.size != entry.size:
        raise _damaged(where, f"{FILES_DIR}/{entry.path} is {copy.size} bytes or more, "
                              f"the manifest says {entry.size}"
                       if copy.size > entry.size else
                       f"{FILES_DIR}/{entry.path} is {copy.size} bytes, the manifest says "
                       f"{entry.size}")
    if copy.blake3 != entry.blake3:
        raise _damaged(where, f"{FILES_DIR}/{entry.path} has BLAKE3 {copy.blake3[:16]}..., "
                              f"the manifest says {entry.blake3[:16]}...")


# -- folders ----------------------------------------------------------------------------


def _read_dir(root: Path, copier: _Copier) -> tuple[ExportManifest, dict[str, _Copy]]:
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InvalidInputError(f"{root} is not an export: it has no {MANIFEST_NAME}")
    with _open_regular(manifest_path, root) as f:
        manifest = parse_manifest(_read_manifest(f, root))
    files_root = root / FILES_DIR
    listed = {f.path: f for f in manifest.files}
    _refuse_unlisted(files_root, listed, root)
    copies = {}
    for path, entry in listed.items():
        with _open_regular(_inside(files_root, path, root), root) as f:
            copies[path] = copier.copy(f, entry.size, f"{root}/{FILES_DIR}/{path}")
        _compare(entry, copies[path], root)  # fail at the first bad file, not the last
    return manifest, copies


def _refuse_unlisted(files_root: Path, listed: Mapping[str, ExportedFile], where: Path) -> None:
    if not files_root.is_dir():
        if listed:
            raise _damaged(where, f"it has no {FILES_DIR}/ folder")
        return
    for folder, dirs, names in os.walk(files_root):
        dirs.sort()
        for name in sorted(names):
            relative = (Path(folder) / name).relative_to(files_root).as_posix()
            if relative not in listed:
                raise _damaged(where, f"{FILES_DIR}/{relative} is not listed in {MANIFEST_NAME}")


def _inside(files_root: Path, path: str, where: Path) -> Path:
    """``files_root / path``, refusing a folder link that leads out of the export."""
    # Why: a link like files/data -> /home/user would make a listed path read a file
    # the export does not hold (the final component is refused by O_NOFOLLOW).
    target = files_root / path
    if not target.parent.resolve().is_relative_to(files_root.resolve()):
        raise InvalidInputError(
            f"export {where}: {FILES_DIR}/{path} leads outside the export through a symbolic "
            "link (an export holds regular files only)"
        )
    return target


@contextlib.contextmanager
def _open_regular(path: Path, where: Path) -> Iterator[IO[bytes]]:
    """``path`` for reading if it is a regular file, not a link, FIFO or device."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise _damaged(where, f"{path.relative_to(where).as_posix()} is missing") from None
    except OSError as exc:
        # ELOOP: the last component is a symbolic link (O_NOFOLLOW).
        raise InvalidInputError(
            f"cannot read {path}: {exc.strerror or exc} (an export holds regular files only)"
        ) from None
    f = os.fdopen(fd, "rb")
    with f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInputError(
                f"{path} is not a regular file (an export holds regular files only)"
            )
        yield f


def _read_manifest(f: IO[bytes], where: Path) -> bytes:
    data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidInputError(
            f"{where}: {MANIFEST_NAME} is over {MAX_MANIFEST_BYTES >> 20} MiB; "
            "this artifactstore does not read manifests that large"
        )
    return data


# -- tar files --------------------------------------------------------------------------


def _read_tar(path: Path, copier: _Copier) -> tuple[ExportManifest, dict[str, _Copy]]:
    """Stream the members once: our exports put the manifest first, so files are
    checked as they arrive; a tar made by another tool may put it anywhere."""
    manifest: ExportManifest | None = None
    listed: dict[str, ExportedFile] = {}
    copies: dict[str, _Copy] = {}
    try:
        tar = tarfile.open(path, mode="r|*")  # noqa: SIM115 - a with block follows
    except (tarfile.TarError, *_STREAM_ERRORS):
        raise InvalidInputError(f"{path} is neither a folder nor a tar file") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with tar:
        try:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isdir() or (name != MANIFEST_NAME
                                      and not name.startswith(f"{FILES_DIR}/")):
                    continue  # never extracted: folders and other members are harmless
                if not member.isreg():
                    raise InvalidInputError(
                        f"{path}: member {member.name!r} is not a regular file "
                        "(an export holds regular files only)"
                    )
                stream = tar.extractfile(member)
                assert stream is not None  # a regular file
                if name == MANIFEST_NAME:
                    if manifest is not None:
                        raise _damaged(path, f"it holds {MANIFEST_NAME} twice")
                    manifest = parse_manifest(_read_manifest(stream, path))
                    listed = {f.path: f for f in manifest.files}
                    unlisted = sorted(set(copies) - set(listed))
                    if unlisted:
                        raise _damaged(path, f"{FILES_DIR}/{unlisted[0]} is not listed in "
                                             f"{MANIFEST_NAME}")
                    continue
                relative = validate_path(name[len(FILES_DIR) + 1 :])
                if relative in copies:
                    raise _damaged(path, f"it holds {FILES_DIR}/{relative} twice")
                entry = listed.get(relative)
                if manifest is not None and entry is None:
                    raise _damaged(path, f"{FILES_DIR}/{relative} is not listed in "
                                         f"{MANIFEST_NAME}")
                copies[relative] = copier.copy(stream, None if entry is None else entry.size,
                                               f"{path}:{member.name}")
                if entry is not None:
                    _compare(entry, copies[relative], path)
        except (tarfile.TarError, *_STREAM_ERRORS) as exc:
            raise _damaged(path, f"the tar file is truncated or corrupt ({exc})") from None
    if manifest is None:
        raise InvalidInputError(f"{path} is not an export: it has no {MANIFEST_NAME}")
    return manifest, copies
