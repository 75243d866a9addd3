"""``artifactstore server-audit URL``: a team server's audit log (server admins only).

Reads ``GET /v1/audit`` (artifactstore/server/audit.py) with the token ``artifactstore
login`` saved for the server (or ``$ARTIFACTSTORE_TOKEN``), page by page, and prints one
line per entry: when, who, what, which key, the HTTP status it got.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from artifactstore.backends.credentials import origin_of, token_for
from artifactstore.core.errors import (
    ArtifactStoreError,
    BackendError,
    BackendUnavailableError,
    InvalidInputError,
    NotAuthorizedError,
    NotSignedInError,
)

__all__ = ["register"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parse_when(text: str, *, now: float | None = None) -> float:
    """Seconds since 1970 from an ISO-8601 date or time (UTC unless it says) or an age
    such as ``2h``, ``7d`` (that long ago)."""
    from artifactstore.maintenance.lifecycle import parse_duration

    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            age = parse_duration(value)
        except InvalidInputError:
            age = -1.0
        if age < 0 or not value or value[-1].isdigit():
            raise InvalidInputError(f"{text[:40]!r} is not a time: use e.g. 2026-12-01, "
                                    "2026-12-01T09:30Z or an age such as 2h, 7d") from None
        return (time.time() if now is None else now) - age
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _base(url: str) -> str:
    origin = origin_of(url)
    parts = urlsplit(origin)
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise InvalidInputError(f"{url!r}: plain http is only for a server on this machine "
                                "(127.0.0.1); use https://")
    return origin


def _get(base: str, query: dict[str, str], token: str | None) -> dict[str, Any]:
    import urllib3

    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = urllib3.request("GET", f"{base}/v1/audit?{urlencode(query)}",
                                   headers=headers, timeout=urllib3.Timeout(30),
                                   retries=urllib3.Retry(2, redirect=0))
    except urllib3.exceptions.HTTPError as exc:
        raise BackendUnavailableError(f"cannot reach the team server at {base} "
                                      f"({type(exc).__name__}); check the URL") from None
    try:
        body = json.loads(response.data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BackendError(f"{base} answered HTTP {response.status} without the audit "
                           "log's JSON: is it an artifactstore server?")
    message = " ".join(str(body.get("message", "")).split())[:300]
    if response.status == 401:
        raise NotSignedInError(message or f"sign in first: artifactstore login {base}")
    if response.status == 403:
        raise NotAuthorizedError(message or "reading the audit log needs a server admin")
    if response.status == 400:
        raise InvalidInputError(message or "the server refused the query")
    if response.status != 200 or not isinstance(body.get("entries"), list):
        raise BackendError(f"{base} answered HTTP {response.status}: {message or 'no entries'}")
    return body


def server_audit(args: argparse.Namespace) -> Any:
    base = _base(args.url)
    query = {}
    if args.since is not None:
        query["since"] = f"{parse_when(args.since):.3f}"
    if args.until is not None:
        query["until"] = f"{parse_when(args.until):.3f}"
    token = token_for(base)
    entries: list[dict[str, Any]] = []
    while args.limit is None or len(entries) < args.limit:
        page = _get(base, query, token)
        entries.extend(e for e in page["entries"] if isinstance(e, dict))
        after = page.get("next")
        if not isinstance(after, str) or not after:
            break
        query["after"] = after
    if args.limit is not None:
        entries = entries[:args.limit]
    if args.json:
        return {"server": base, "entries": entries}
    for e in entries:
        try:
            when = datetime.fromtimestamp(float(e["at"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            print(f"{when}  {e['user']}  {e['action']}  {e['status']}  {e['kind']}  "
                  f"{e['key']}")
        except (KeyError, TypeError, ValueError):
            raise ArtifactStoreError(f"{base} sent an audit entry without its fields") from None
    return 0


def _limit(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"use a whole number >= 1, not {text!r}")
    return int(text)


def register(add: Any, common: argparse.ArgumentParser) -> None:
    del common
    p = add("server-audit", server_audit,
            "show a team server's audit log: every write and delete, with its user "
            "(server admins)")
    p.add_argument("url", metavar="URL",
                   help="the server, https://host[:port] (http only on 127.0.0.1)")
    p.add_argument("--since", metavar="WHEN",
                   help="from this time on: 2026-12-01, 2026-12-01T09:30Z (UTC unless "
                        "given) or an age such as 2h, 7d (default: the whole log)")
    p.add_argument("--until", metavar="WHEN",
                   help="before this time, same forms as --since (default: now)")
    p.add_argument("--limit", type=_limit, metavar="N",
                   help="at most N entries, oldest first (default: all)")
