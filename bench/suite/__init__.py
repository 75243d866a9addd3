"""Side-by-side benchmark of artifactstore, DVC, restic and borg (issue 7).

Vocabulary:

- **workload**: a named data set with versions ``v1..vN``, each a full folder
  snapshot under the work dir (:mod:`bench.suite.workloads`).
- **tool**: one versioning program behind the :class:`~bench.suite.tools.Tool`
  protocol; every step runs in a subprocess so its peak RSS is its own.
- **step**: one timed tool action (add a version, restore v1), measured as a
  :class:`~bench.suite.tools.Step` (wall time, peak RSS).
- **S3 case** (``--s3``): push, unchanged re-push and restore of v1 against a moto
  server on 127.0.0.1 that counts the HTTP requests each step sends
  (:mod:`bench.suite.s3`, :mod:`bench.suite.s3server`).

``python -m bench`` from the repository root (or ``python bench/run.py``) runs it;
see ``bench/README.md``.
"""
