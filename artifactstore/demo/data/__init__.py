"""Bundled public datasets for the demo (see README.md here for sources and licence)."""
