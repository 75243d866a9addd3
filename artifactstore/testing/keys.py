"""Cheap key-derivation settings for tests only.

The defaults (scrypt N = 2**17) take ~0.3 s and 128 MiB per derivation: right for
users, too slow for a test suite that derives hundreds of keys. Tests pass these
explicitly; the library never falls back to them.
"""

from __future__ import annotations

from typing import Final

from artifactstore.core.crypto import ScryptParams

__all__ = ["CHEAP_SCRYPT"]

CHEAP_SCRYPT: Final = ScryptParams(log_n=10, r=8, p=1)
