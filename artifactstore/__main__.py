"""``python -m artifactstore``: the same as the ``artifactstore`` command."""

import sys

from artifactstore.cli import main

sys.exit(main())
