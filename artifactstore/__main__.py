"""``python -m artifactstore``: the same as the ``artifactstore`` command."""

from artifactstore.cli import run

run()
