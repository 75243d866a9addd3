"""artifactstore's S3 push and restore through its Python API, one process per step.

Run by :mod:`bench.suite.s3` (by path, so the process imports only artifactstore),
after ``artifactstore init s3://bucket/prefix`` created the store:

    python artifactstore_s3.py push    s3://bucket/prefix NAME FOLDER
    python artifactstore_s3.py restore s3://bucket/prefix NAME:vN OUT

``push`` is ``artifactstore.open(url)`` and ``log_artifact(FOLDER, NAME)``;
``restore`` opens the store and downloads the version into ``OUT``. The endpoint and
credentials come from ``BENCH_S3_ENDPOINT``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION`` and are passed to ``open`` as
options. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import artifactstore


def main(argv: list[str]) -> int:
    command, url, *rest = argv
    # backend options for open(), which takes them as **Any (not its typed keywords)
    options: dict[str, Any] = {"endpoint_url": os.environ["BENCH_S3_ENDPOINT"],
                               "key": os.environ["AWS_ACCESS_KEY_ID"],
                               "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
                               "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    reply: dict[str, object] = {"command": command}
    if command == "push":
        name, folder = rest
        with artifactstore.open(url, **options) as store:
            version = store.log_artifact(folder, name)
            reply.update(ref=version.ref, created=version.created)
    elif command == "restore":
        ref, out = rest
        with artifactstore.open(url, **options) as store:
            store.artifact(ref).download(out)
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
