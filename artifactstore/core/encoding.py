"""Canonical msgpack: the one byte encoding of every structured object we store.

Implements ``docs/design.md``, "Canonical encoding". Manifests, trees, index
objects, config and refs are all encoded by :func:`pack` and decoded by
:func:`unpack`. Vocabulary:

- **value**: what :func:`pack` accepts: ``None``, ``bool``, ``int`` (from -2**63
  to 2**64 - 1), ``float``, ``str`` (encodable as UTF-8), ``bytes`` (also
  ``bytearray`` and ``memoryview``, encoded as bin), ``list`` and ``tuple``
  (both arrays), and ``dict`` whose keys are ``str`` or ``bytes``. Types must be
  exact: subclasses (enums, ``OrderedDict``, numpy scalars), sets, datetimes,
  msgpack ext types and timestamps are refused, naming the type and its path.
  Nesting is limited to :data:`MAX_DEPTH` containers.
- **canonical form**: the single encoding :func:`pack` gives a value, so equal
  values (same types, same contents) give identical bytes and so identical ids:
  every header in its shortest form, ``str`` as str and bytes as bin
  (``use_bin_type``), every float as float64 (never float32), every NaN as the
  quiet NaN ``cb 7ff8000000000000``, ``-0.0`` kept distinct from ``0.0``, and map
  entries sorted by the bytes of their packed keys (so shorter str keys come
  first, and str keys before bytes keys).

:func:`unpack` accepts any valid msgpack encoding of a value (a canonical
encoder's output, or another encoder's) and returns lists and dicts. It refuses
trailing bytes, truncated or malformed input, invalid UTF-8, map keys other than
str and bytes, duplicate map keys, ext types and timestamps, and input larger
than its ``max_size``, all as :class:`~artifactstore.core.errors.IntegrityError`:
bytes read from a store are untrusted.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Final

import msgpack

from artifactstore.core.errors import IntegrityError, InvalidInputError

__all__ = ["MAX_DEPTH", "MAX_UNPACK_SIZE", "pack", "unpack"]

MAX_DEPTH: Final = 512
"""Deepest nesting of arrays and maps :func:`pack` accepts (msgpack's decoder stops at 1024)."""

MAX_UNPACK_SIZE: Final = 64 << 20
"""Default limit on the encoded size :func:`unpack` accepts; trees and index
objects are split well below it. The msgpack decoder also bounds every length
header by the input's size, so no header can make it allocate more."""

_INT_MIN: Final = -(1 << 63)
_INT_MAX: Final = (1 << 64) - 1
_ALLOWED = "None, bool, int, float, str, bytes, list, tuple and dict with str or bytes keys"


class _Refused(Exception):
    """Internal: a value pack() refuses; ``path`` collects keys and indexes, innermost first."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[object] = []


def _render(path: list[object]) -> str:
    return "$" + "".join(f"[{segment!r}]" for segment in reversed(path))


def pack(value: object) -> bytes:
    """Return the canonical msgpack encoding of ``value`` (see the module docstring).

    Raises InvalidInputError naming the offending type and its path (``$`` is
    ``value`` itself, then ``['key']`` and ``[index]`` segments).
    """
    try:
        canonical = _canonical(value, 0)
    except _Refused as refused:
        raise InvalidInputError(
            f"cannot encode {refused.reason} at {_render(refused.path)}; "
            f"canonical msgpack takes {_ALLOWED}"
        ) from None
    packed: bytes = msgpack.packb(
        canonical, use_bin_type=True, use_single_float=False, strict_types=True, datetime=False
    )
    return packed


def _check_str(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused("str that is not valid UTF-8 (it holds a lone surrogate)") from None


def _canonical(value: object, depth: int) -> object:
    """Return ``value`` rebuilt from exact types with maps in canonical order."""
    if value is None or type(value) is bool or type(value) is bytes:
        return value
    if type(value) is str:
        _check_str(value)
        return value
    if type(value) is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Refused(f"int {value} outside the int64/uint64 range")
        return value
    if type(value) is float:
        return math.nan if math.isnan(value) else value
    if type(value) is bytearray or type(value) is memoryview:
        return bytes(value)
    if type(value) is list or type(value) is tuple:
        if depth >= MAX_DEPTH:
            raise _Refused(f"{_type_name(value)} nested deeper than {MAX_DEPTH} levels")
        items: list[object] = []
        for index, item in enumerate(value):
            kind = type(item)
            # Why inline: metrics segments hold thousands of small rows of floats, and a
            # call per scalar was half the cost of run.log (bench/ui_scale.py)
            if kind is float:
                items.append(math.nan if item != item else item)
            elif item is None or kind is bool:
                items.append(item)
            else:
                try:
                    items.append(_canonical(item, depth + 1))
                except _Refused as refused:
                    refused.path.append(index)
                    raise
        return items
    if type(value) is dict:
        if depth >= MAX_DEPTH:
            raise _Refused(f"dict nested deeper than {MAX_DEPTH} levels")
        result: dict[object, object] = {}
        # keys differ, so packed keys differ: no ties; _packed_key refuses bad keys
        for key in sorted(value, key=_packed_key):
            item = value[key]
            kind = type(item)
            if kind is float:  # inline, as for lists above
                result[key] = math.nan if item != item else item
            elif item is None or kind is bool:
                result[key] = item
            else:
                result[key] = _canonical_item(key, item, depth)
        return result
    raise _Refused(f"a value of type {_type_name(value)}")


def _type_name(value: object) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _canonical_item(key: object, item: object, depth: int) -> object:
    try:
        return _canonical(item, depth + 1)
    except _Refused as refused:
        refused.path.append(key)
        raise


@functools.lru_cache(maxsize=4096, typed=True)  # field names repeat in every entry
def _packed_key(key: object) -> bytes:
    if type(key) is str:
        _check_str(key)
    elif type(key) is not bytes:
        raise _Refused(
            f"a map key of type {_type_name(key)} (key {key!r:.60}; map keys must be str or bytes)"
        )
    packed: bytes = msgpack.packb(key, use_bin_type=True)
    return packed


def _refuse_ext(code: int, data: bytes) -> object:
    raise ValueError(f"msgpack ext type {code} is not allowed")


def _map_without_duplicates(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # Two readers of the same bytes must never see different values.
        raise ValueError("duplicate map key")
    return result


def unpack(
    data: bytes | bytearray | memoryview,
    *,
    what: str = "data",
    max_size: int = MAX_UNPACK_SIZE,
) -> Any:
    """Decode one msgpack value from all of ``data``.

    ``what`` names the object in error messages (``"manifest 3f2a…"``). Raises
    IntegrityError ``"malformed msgpack in <what>: ..."`` for anything the
    module docstring lists as refused.
    """
    size = memoryview(data).nbytes
    if size > max_size:
        raise IntegrityError(
            f"malformed msgpack in {what}: {size} bytes is over the {max_size}-byte limit"
        )
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            object_pairs_hook=_map_without_duplicates,
            ext_hook=_refuse_ext,
            # Timestamps (ext -1) bypass ext_hook; a zero limit refuses every ext
            # that has data, and ext_hook the ones that have none.
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        reason = str(exc)
        if isinstance(exc, msgpack.FormatError):
            reason = "invalid msgpack type byte"
        elif isinstance(exc, msgpack.StackError):
            reason = "nested too deeply"
        elif "max_ext_len" in reason:  # see max_ext_len above
            reason = "msgpack ext types and timestamps are not allowed"
        raise IntegrityError(f"malformed msgpack in {what}: {reason}") from exc
