"""The defaults of gc that the API and the command line name in their signatures and
help, kept apart so that naming them does not import the collector itself."""

__all__ = ["DEFAULT_GRACE", "DEFAULT_REPACK_THRESHOLD"]

#: seconds an unreferenced pack is left alone (a writer may be about to commit it)
DEFAULT_GRACE = 3600.0
#: repack a pack when at least this share of it is garbage
DEFAULT_REPACK_THRESHOLD = 0.3
