"""Side-by-side benchmark of artifactstore, DVC, restic and borg (issue 7).

Vocabulary:

- **workload**: a named data set with versions ``v1..vN``, each a full folder
  snapshot under the work dir (:mod:`bench.suite.workloads`).
- **tool**: one versioning program behind the :class:`~bench.suite.tools.Tool`
  protocol; every step runs in a subprocess so its peak RSS is its own.
- **step**: one timed tool action (add a version, restore v1), measured as a
  :class:`~bench.suite.tools.Step` (wall time, peak RSS).

``python bench/run.py`` (or ``python -m bench.suite`` from the repository root) runs it;
see ``bench/README.md``.
"""
