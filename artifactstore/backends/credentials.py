"""Team-server tokens this user holds, one per server (as ``~/.aws/credentials`` is for S3).

``artifactstore login https://host`` saves the token the server gave; every later use of
``artifactstore+https://host/...`` sends it. The file is ``tokens.json`` in the user's
config folder (``core.privatefiles.config_dir``), mode 0600: ``{"<origin>": {"token":
..., "saved_at": ...}}`` where ``<origin>`` is ``https://host[:port]``. The variable
``ARTIFACTSTORE_TOKEN`` (CI jobs) wins over the file, for every server.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from artifactstore.core.errors import ConfigurationError, InvalidInputError, local_write_error
from artifactstore.core.privatefiles import config_dir, write_private_file

__all__ = ["TOKENS_FILE", "TOKEN_ENV", "forget_token", "origin_of", "save_token", "token_for"]

TOKEN_ENV: Final = "ARTIFACTSTORE_TOKEN"
TOKENS_FILE: Final = "tokens.json"


def origin_of(url: str) -> str:
    """``https://host[:port]`` of a server URL (``artifactstore+https://host/x`` too),
    lower-cased: the key tokens are saved under."""
    parts = urlsplit(url.removeprefix("artifactstore+"))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInputError(f"{url!r} is not a server URL; use https://host[:port]")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def _path() -> Path:
    return config_dir() / TOKENS_FILE


def _load() -> dict[str, Any]:
    try:
        raw = _path().read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read {_path()}: {exc.strerror or exc}") from None
    try:
        found = json.loads(raw)
    except ValueError:
        raise ConfigurationError(f"{_path()} is not JSON; remove it and sign in again "
                                 "with artifactstore login URL") from None
    return found if isinstance(found, dict) else {}


def token_for(url: str) -> str | None:
    """The token to send to the server at ``url``: ``$ARTIFACTSTORE_TOKEN``, else the
    one saved for its origin, else None (anonymous)."""
    env = os.environ.get(TOKEN_ENV)
    if env:
        return env.strip()
    entry = _load().get(origin_of(url))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) and token else None


def save_token(url: str, token: str) -> Path:
    """Keep ``token`` for the server at ``url`` (replacing one saved before); the path."""
    tokens = _load()
    tokens[origin_of(url)] = {"token": token, "saved_at": int(time.time())}
    try:
        write_private_file(_path(), json.dumps(tokens, indent=1, sort_keys=True).encode(),
                           root=config_dir())
    except OSError as exc:
        raise local_write_error(exc, f"cannot save the token in {_path()}",
                                f"set {TOKEN_ENV} instead") from None
    return _path()


def forget_token(url: str) -> bool:
    """Drop the token saved for the server at ``url``; whether there was one."""
    tokens = _load()
    if tokens.pop(origin_of(url), None) is None:
        return False
    try:
        write_private_file(_path(), json.dumps(tokens, indent=1, sort_keys=True).encode(),
                           root=config_dir())
    except OSError as exc:
        raise local_write_error(exc, f"cannot update {_path()}", "edit it by hand") from None
    return True
