"""Reading the YAML files other tools write (``.dvc``, ``dvc.lock``, MLflow's
``meta.yaml``) with PyYAML, the ``[import]`` extra: safe loading only, a missing
library or a malformed file a one-line error naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from artifactstore.core.errors import InvalidInputError

__all__ = ["parse_yaml", "read_yaml"]


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in the YAML file at ``path`` (empty for an empty file)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read it ({exc.strerror})") from None
    return parse_yaml(data, str(path))


def parse_yaml(data: bytes | str, path: str) -> dict[str, Any]:
    """The mapping in ``data``, the text of the file ``path`` names (for messages)."""
    try:
        import yaml
    except ImportError:
        raise InvalidInputError("importing needs PyYAML: pip install "
                                "'artifactstore[import]'") from None
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]})"
                                ) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{path}: expected a mapping, found {type(doc).__name__}")
    return doc
