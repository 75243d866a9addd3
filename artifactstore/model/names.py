"""Names of projects, artifacts and aliases, and references to versions.

Vocabulary:

- **name**: a project, artifact or alias name. 1-128 characters from
  ``A-Z a-z 0-9 . _ -``, starting with a letter or digit (:data:`NAME_RE`).
  Names become key segments (``projects/<project>/artifacts/<name>/…``), so the
  rule also keeps them safe as paths: no ``/``, no ``.``/``..``, no leading ``-``
  that a shell tool would read as an option.
- **version label**: ``v<N>`` for version number N >= 0, written without leading
  zeros (``v0``, ``v3``, ``v12``).
- **alias**: a movable name for a version. It follows the name rule, and may not
  look like a version label (``v<digits>``) or be ``latest``, which always means
  the newest live version.
- **selector**: what follows the colon in a ref: ``latest``, a version label or
  an alias.
- **ref**: ``name`` (meaning ``name:latest``) or ``name:selector``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from artifactstore.core.errors import InvalidInputError

__all__ = [
    "LATEST",
    "MAX_VERSION",
    "NAME_RE",
    "aliases_to_log",
    "parse_ref",
    "parse_version_label",
    "validate_alias",
    "validate_artifact_name",
    "validate_project_name",
    "validate_selector",
    "version_label",
]

NAME_RE: Final = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
"""The rule every project, artifact and alias name matches in full."""

LATEST: Final = "latest"
"""The implicit selector: the newest live version."""

MAX_VERSION: Final = 9_999_999_999
"""The largest version number: version keys hold the number in 10 digits."""

_NAME: Final = re.compile(NAME_RE)
_VERSIONISH: Final = re.compile(r"v[0-9]+")
_LABEL: Final = re.compile(r"v(0|[1-9][0-9]*)")
_RULE: Final = "1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _validate(what: str, value: str, example: str) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise InvalidInputError(
            f"invalid {what} {_shown(value)}: use {_RULE} (for example {example!r})"
        )
    return value


def validate_project_name(name: str) -> str:
    """Return ``name`` if it is a valid project name, else raise InvalidInputError."""
    return _validate("project name", name, "vision-team")


def validate_artifact_name(name: str) -> str:
    """Return ``name`` if it is a valid artifact name, else raise InvalidInputError."""
    return _validate("artifact name", name, "imagenet-subset")


def validate_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias, else raise InvalidInputError.

    Why the extra rules: ``name:v3`` must always mean version 3 and
    ``name:latest`` the newest version, whatever aliases exist.
    """
    _validate("alias", alias, "prod")
    if _VERSIONISH.fullmatch(alias):
        raise InvalidInputError(
            f"invalid alias {alias!r}: v<digits> is reserved for version numbers; "
            "pick another name (for example 'prod')"
        )
    if alias == LATEST:
        raise InvalidInputError(
            "invalid alias 'latest': it always means the newest version and cannot be set; "
            "pick another name (for example 'prod')"
        )
    return alias


def aliases_to_log(aliases: Iterable[str]) -> list[str]:
    """The aliases a log sets, checked: ``latest`` is dropped rather than refused (as
    W&B scripts pass it), because the version a log returns is always the newest."""
    return [validate_alias(a) for a in aliases if a != LATEST]


def version_label(number: int) -> str:
    """``3`` -> ``"v3"``."""
    if type(number) is not int or not 0 <= number <= MAX_VERSION:
        raise InvalidInputError(
            f"invalid version number {_shown(number)}: use an integer 0..{MAX_VERSION}"
        )
    return f"v{number}"


def parse_version_label(label: str) -> int | None:
    """``"v3"`` -> ``3``; anything that is not a canonical version label -> None."""
    if not isinstance(label, str) or _LABEL.fullmatch(label) is None:
        return None
    number = int(label[1:])
    return number if number <= MAX_VERSION else None


def validate_selector(selector: str, ref: str | None = None) -> str:
    """Return ``selector`` if it is ``latest``, a version label or a valid alias name.

    ``ref`` (the whole ref the selector came from) is named in the error.
    """
    ref = selector if ref is None else ref
    if not isinstance(selector, str):
        raise InvalidInputError(f"invalid selector {_shown(selector)}: expected a str")
    if selector == LATEST or parse_version_label(selector) is not None:
        return selector
    if _VERSIONISH.fullmatch(selector):
        raise InvalidInputError(
            f"invalid version {selector!r} in {_shown(ref)}: write version numbers without "
            f"leading zeros, at most {MAX_VERSION} (for example 'v3')"
        )
    if _NAME.fullmatch(selector) is None:
        raise InvalidInputError(
            f"invalid selector {_shown(selector)} in ref {_shown(ref)}: after ':' write "
            f"'latest', a version such as 'v3' or an alias ({_RULE})"
        )
    return selector


def parse_ref(ref: str) -> tuple[str, str]:
    """Split ``"name[:selector]"`` into ``(name, selector)``; the default selector is latest.

    ``"model"`` -> ``("model", "latest")``, ``"model:v3"`` -> ``("model", "v3")``,
    ``"model:prod"`` -> ``("model", "prod")``. Raises InvalidInputError for
    anything else (empty, more than one ``:``, an invalid name or selector).
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidInputError(
            f"invalid ref {_shown(ref)}: write name, name:vN or name:alias (for example 'model:v3')"
        )
    name, colon, selector = ref.partition(":")
    if ":" in selector:
        raise InvalidInputError(
            f"invalid ref {_shown(ref)}: at most one ':' (write name, name:vN or name:alias)"
        )
    validate_artifact_name(name)
    if not colon:
        return name, LATEST
    return name, validate_selector(selector, ref)
