"""Benchmarks of artifactstore; ``python -m bench`` runs the side-by-side suite (issue 7)."""
