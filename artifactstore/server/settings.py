"""The team server's configuration: a small TOML file and the environment.

``artifactstore serve --config server.toml`` reads (every key optional but ``store``)::

    store = "s3://team-bucket/artifacts"      # or --store; any URL the library opens
    public_url = "https://artifacts.example.com"   # where browsers reach it (redirects)
    token_days = 90                           # the longest an API token may live
    max_object_mib = 256                      # the largest object a client may PUT
    upload_buffer_mib = 1024                  # PUT bodies one process holds at once

    [store_options]                           # how to open the store, never its secrets
    endpoint_url = "https://minio.internal:9000"
    region = "eu-west-1"

    [[issuers]]                               # one table per sign-in provider
    name = "company"                          # shown on the sign-in page, part of user ids
    kind = "oidc"                             # "oidc" (discovery), "google", "github"
    issuer = "https://login.example.com"      # OIDC only: discovery at /.well-known/...
    client_id = "..."
    client_secret_env = "OIDC_CLIENT_SECRET"  # the secret itself stays in the environment

    [roles]                                   # parsed by server.roles (docs/server.md)

Secrets never sit in the file: the session and token key comes from the environment
variable ``ARTIFACTSTORE_SERVER_SECRET`` (shared by every instance behind one load
balancer), each issuer's client secret from the variable its ``client_secret_env`` names.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from artifactstore.core.errors import ConfigurationError

__all__ = ["SECRET_ENV", "IssuerSettings", "ServerSettings", "load_settings"]

SECRET_ENV: Final = "ARTIFACTSTORE_SERVER_SECRET"
ISSUER_KINDS: Final = ("oidc", "google", "github")
_TOP_KEYS: Final = frozenset({"store", "public_url", "token_days", "issuers", "roles",
                              "max_object_mib", "upload_buffer_mib", "server_identity",
                              "store_options"})
#: store options that are secrets: they come from the environment, never the file
_SECRET_OPTIONS: Final = frozenset({"key", "secret", "token", "password", "passphrase",
                                    "client_secret"})


@dataclass(frozen=True, slots=True)
class IssuerSettings:
    """One sign-in provider: ``kind`` oidc (``issuer`` is its URL), google or github."""

    name: str
    kind: str
    client_id: str
    client_secret: str
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything a server instance needs; several instances share one store."""

    store_url: str
    secret: bytes
    public_url: str | None = None
    issuers: tuple[IssuerSettings, ...] = ()
    #: the raw ``[roles]`` table, read by :mod:`artifactstore.server.roles`
    roles: Mapping[str, Any] = field(default_factory=dict)
    token_days: int = 90
    #: the largest object a client may PUT (packs are far smaller), bytes
    max_object_bytes: int = 256 << 20
    #: the most bytes of PUT bodies one server process holds at once (None: four of
    #: the largest object); more uploads wait (server.uploads)
    upload_buffer_bytes: int | None = None
    #: options for opening the backing store (``open_backend``'s: endpoint_url, region,
    #: profile, timeouts...), never its credentials
    store_options: Mapping[str, Any] = field(default_factory=dict)
    #: a folder holding the server's own identity (docs/server.md, "Private projects")
    server_identity: str | None = None


def load_settings(path: str | os.PathLike[str] | None = None, *, store: str | None = None,
                  environ: Mapping[str, str] | None = None) -> ServerSettings:
    """Settings from ``path`` (a TOML file, optional) and ``environ`` (default
    ``os.environ``); ``store`` overrides the file's. ConfigurationError names the
    first problem."""
    env = os.environ if environ is None else environ
    table: dict[str, Any] = {}
    if path is not None:
        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the server settings {path}: "
                                     f"{exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"the server settings {path} are not TOML: {exc}") from None
    unknown = sorted(set(table) - _TOP_KEYS)
    if unknown:
        raise ConfigurationError(f"unknown server setting {unknown[0]!r}; known: "
                                 f"{', '.join(sorted(_TOP_KEYS))}")
    store_url = store or table.get("store")
    if not isinstance(store_url, str) or not store_url:
        raise ConfigurationError("the server needs a store: --store URL or store = \"URL\"")
    secret = env.get(SECRET_ENV, "")
    if len(secret) < 32:
        raise ConfigurationError(f"set {SECRET_ENV} to a random secret of at least 32 "
                                 "characters (the same on every instance), e.g. "
                                 "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    public_url = table.get("public_url")
    if public_url is not None and not (isinstance(public_url, str)
                                       and public_url.startswith(("https://", "http://"))):
        raise ConfigurationError("public_url must be an http(s) URL")
    token_days = table.get("token_days", 90)
    if type(token_days) is not int or not 1 <= token_days <= 3660:
        raise ConfigurationError("token_days must be a whole number of days from 1 to 3660")
    max_mib = table.get("max_object_mib", 256)
    if type(max_mib) is not int or not 16 <= max_mib <= 4096:
        raise ConfigurationError("max_object_mib must be a whole number from 16 to 4096")
    buffer_mib = table.get("upload_buffer_mib", 4 * max_mib)
    if type(buffer_mib) is not int or not max_mib <= buffer_mib <= 65536:
        raise ConfigurationError(f"upload_buffer_mib must be a whole number from "
                                 f"max_object_mib ({max_mib}) to 65536")
    roles = table.get("roles", {})
    if not isinstance(roles, dict):
        raise ConfigurationError("[roles] must be a table")
    identity = table.get("server_identity")
    if identity is not None and not isinstance(identity, str):
        raise ConfigurationError("server_identity must be a folder path")
    return ServerSettings(
        store_url=store_url, secret=secret.encode(), public_url=public_url,
        issuers=tuple(_issuer(item, env) for item in _list(table.get("issuers", []))),
        roles=roles, token_days=token_days, max_object_bytes=max_mib << 20,
        upload_buffer_bytes=buffer_mib << 20, server_identity=identity,
        store_options=_store_options(table.get("store_options", {})))


def _store_options(value: Any) -> dict[str, Any]:
    """The ``[store_options]`` table: plain values, and no secret among them."""
    if not isinstance(value, dict):
        raise ConfigurationError("[store_options] must be a table, e.g. "
                                 "store_options = { endpoint_url = \"https://...\" }")
    for name, option in value.items():
        if name in _SECRET_OPTIONS:
            raise ConfigurationError(
                f"store_options.{name} is a secret and never sits in the file; give the "
                "store's credentials in the environment (AWS_ACCESS_KEY_ID..., "
                "GOOGLE_APPLICATION_CREDENTIALS) or an instance role")
        if type(option) not in (str, int, float, bool):
            raise ConfigurationError(f"store_options.{name} must be a string, number or "
                                     "true/false")
    return dict(value)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigurationError("issuers must be an array of tables: [[issuers]]")
    return value


def _issuer(item: Any, env: Mapping[str, str]) -> IssuerSettings:
    if not isinstance(item, dict):
        raise ConfigurationError("each [[issuers]] entry must be a table")
    name, kind = item.get("name"), item.get("kind", "oidc")
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigurationError(f"issuer name {name!r} must be a word (letters, digits, _)")
    if kind not in ISSUER_KINDS:
        raise ConfigurationError(f"issuer {name}: kind {kind!r} is not one of "
                                 f"{', '.join(ISSUER_KINDS)}")
    issuer = item.get("issuer")
    if kind == "oidc" and not (isinstance(issuer, str) and issuer.startswith(("https://",
                                                                              "http://"))):
        raise ConfigurationError(f"issuer {name}: an oidc issuer needs issuer = \"URL\"")
    client_id = item.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ConfigurationError(f"issuer {name}: client_id is missing")
    secret_env = item.get("client_secret_env")
    if not isinstance(secret_env, str) or not env.get(secret_env):
        raise ConfigurationError(f"issuer {name}: set client_secret_env to the name of an "
                                 "environment variable holding the client secret")
    return IssuerSettings(name=name, kind=kind, client_id=client_id,
                          client_secret=env[secret_env], issuer=issuer)
