"""Folder rows of the stat cache in a streamed log (``ingest``): an unchanged folder of
files re-logged as a whole, at the cost of a ``stat`` per file.

Vocabulary: a folder's *signature* is BLAKE3 of its files' names and stats (device,
inode, size, mtime, ctime, mode) in name order (``localtree.signature``); its *row*
(:class:`~artifactstore.local.statcache.FolderRow`) says which tree node, content
listing lines and blobs the folder was when it had that signature.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from artifactstore.core.digest import Digest, Hasher
from artifactstore.local.localtree import FileRun, signature
from artifactstore.local.statcache import RACY_NS, FolderRow, folder_key
from artifactstore.model.contentid import ContentHasher
from artifactstore.model.entries import INLINE_CHUNKS_MAX
from artifactstore.model.tree import SPLIT_THRESHOLD, FileEntry, TreeWriter
from artifactstore.objects.store import Progress
from artifactstore.repository.project import Project

__all__ = ["FolderNote", "Folders"]

class FolderNote:
    """What a streamed log learns of a folder of files as it stores them, for its row."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.sig = Hasher(parallel=False)
        self.lines: list[bytes] = []
        self.blobs: list[bytes] = []
        self.size = 0
        self.usable = True
        self._racy = time.time_ns() - RACY_NS

    def add(self, entry: FileEntry, st: os.stat_result, line: bytes) -> None:
        if st.st_mtime_ns > self._racy or len(entry.chunks) > INLINE_CHUNKS_MAX:
            self.usable = False  # racily clean, or chunk-list blobs this row would miss
        self.sig.update(signature(entry.path.rsplit("/", 1)[-1], st))
        self.lines.append(line)
        self.blobs.extend(c.id.raw for c in entry.chunks)
        self.size += entry.size


class Folders:
    """Folder rows of the stat cache in a streamed log.

    Why: an unchanged re-log of a million files in 1,000 folders must cost about a
    stat per file, not the building of a file entry, a stat-cache row and a tree
    record each. A folder holding only files (no subfolder, at most one node: not
    split, no chunk list) whose files' names and stats hash to its row's ``sig`` is
    the same tree node, listing lines and blobs as when the row was written; the
    object store checks that every blob is still stored (gc may have removed some:
    then its files are stored one by one, which reads what is missing) and the commit
    guard checks them again before the commit point.
    """

    def __init__(self, project: Project, signatures: Mapping[str, tuple[bytes, int]],
                 progress: Progress | None) -> None:
        """``signatures``: each folder of files' (signature, file count) as the check
        before the log saw them (:func:`~artifactstore.local.localtree.check_folder`):
        a folder is taken as it was then, which a log that read it then would store."""
        self._signatures = signatures
        self._cache = project.stat_cache
        self._objects = project.objects
        self._progress = progress
        self._notes: dict[str, FolderNote] = {}

    def reuse(self, run: FileRun, tree: TreeWriter, content: ContentHasher) -> bool:
        checked = self._signatures.get(run.path)
        if checked is None:
            return False  # racily clean, or not a folder of files, when checked
        row = self._cache.folder(folder_key(run.local, run.path))
        if row is None or row.files != checked[1] or row.sig != checked[0] \
                or len(row.blobs) % 32:
            return False
        blobs = [row.blobs[i:i + 32] for i in range(0, len(row.blobs), 32)]
        if not self._objects.reuse_blobs(blobs, row.size, self._progress):
            return False
        tree.add_dir(run.path, Digest(row.node), row.size, row.files)
        content.add_lines(run.path + "/", row.lines)  # every line under the folder
        return True

    def note(self, run: FileRun, files: list[tuple[str, str]]) -> FolderNote | None:
        """A note to fill with the run's ``files``, if it is a folder a row can describe."""
        if not run.whole or not run.path or len(files) > SPLIT_THRESHOLD:
            return None
        note = self._notes[run.path] = FolderNote(folder_key(run.local, run.path))
        return note

    def closed(self, path: str, node: Digest, size: int, files: int) -> None:
        """The tree writer stored the folder ``path``: its row can be written."""
        note = self._notes.pop(path, None)
        if note is None or not note.usable or files != len(note.lines) or size != note.size:
            return
        row = FolderRow(note.sig.digest().raw, node.raw, size, files, b"".join(note.lines),
                        b"".join(note.blobs) + node.raw)
        self._cache.remember_folder(note.key, row)
