"""The ``artifactstore`` command line: one small function per command.

Each command calls the library and prints either text for people or, with
``--json``, one JSON document for scripts. One handler turns every
``ArtifactStoreError`` into a one-line message on stderr and its exit code
(docs/design.md §9); ``--debug`` shows the traceback instead.
"""

from artifactstore.cli.main import main, run

__all__ = ["main", "run"]
