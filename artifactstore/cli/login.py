"""The ``login``, ``logout``, ``whoami`` and ``token`` commands: the user's side of a team server.

``login https://host`` signs in through the browser with a loopback redirect (RFC
8252): it listens on 127.0.0.1 (a random port), opens (or, with ``--no-browser``,
prints) ``https://host/login/cli?port=N&state=S&code_challenge=C``; the server signs
the browser in and sends it to ``http://127.0.0.1:N/callback?code=...&state=S``; the
command checks ``state``, posts the one-time code and its PKCE verifier to
``/v1/login/exchange`` and saves the API token it gets in the user's ``tokens.json``
(mode 0600, :mod:`artifactstore.backends.credentials`). ``logout`` revokes that token
on the server and forgets it; ``whoami`` asks ``/v1/whoami``; ``token create|list|
revoke`` manage API tokens for CI (``ARTIFACTSTORE_TOKEN=ast1_...`` uses one).

Plain ``http://`` is accepted for loopback servers only: a token must not cross a
network in clear.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import time
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

from artifactstore.backends.credentials import forget_token, origin_of, save_token, token_for
from artifactstore.cli._common import say
from artifactstore.core.errors import (
    ArtifactStoreError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
)

__all__ = ["register"]

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
ROLES: Final = ("reader", "writer", "admin")
_ERRORS: Final[dict[int, type[ArtifactStoreError]]] = {
    400: InvalidInputError, 401: NotSignedInError, 403: NotAuthorizedError,
    404: NotFoundError, 413: InvalidInputError}


def _server(args: argparse.Namespace) -> str:
    """The server's origin: the argument, else ``--store`` when it is a server URL."""
    given = args.server or args.store
    if not given:
        raise InvalidInputError("name the server: artifactstore login https://host")
    origin = origin_of(given)
    parts = urlsplit(origin)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise InvalidInputError(f"{origin} is plain http; use https:// (http is for "
                                "127.0.0.1 only: a token must not cross a network in clear)")
    return origin


def _call(origin: str, method: str, path: str, body: Any = None,
          token: str | None = None) -> Any:
    """One JSON request to the server; its errors as the library's (exit 14, 15...)."""
    import urllib3

    headers = {"Accept": "application/json", "User-Agent": "artifactstore-cli"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        response = urllib3.request(method, origin + path, body=data, headers=headers,
                                   redirect=False, retries=False,
                                   timeout=urllib3.Timeout(connect=10, read=60))
    except urllib3.exceptions.HTTPError as exc:
        raise BackendUnavailableError(f"cannot reach {origin} ({type(exc).__name__}); "
                                      "check the URL and the network") from None
    try:
        found = json.loads(response.data)
    except ValueError:
        found = None
    if 200 <= response.status < 300 and isinstance(found, dict):
        return found
    message = found.get("message") if isinstance(found, dict) else None
    kind = _ERRORS.get(response.status, BackendUnavailableError)
    raise kind(str(message or f"{origin} answered HTTP {response.status} to {path}")
               .splitlines()[0][:300])


def _token(origin: str) -> str:
    token = token_for(origin)
    if not token:
        raise NotSignedInError(f"not signed in to {origin}; run artifactstore login {origin}")
    return token


# -- login -------------------------------------------------------------------------


def _callback_handler(state: str, got: dict[str, str]) -> type:
    """The handler of the one request the browser makes to us (http.server is imported
    here: only ``login`` listens)."""
    import http.server

    class _Callback(http.server.BaseHTTPRequestHandler):
        """The one request the browser makes to us: ``/callback?code=...&state=...``."""

        state: str = ""
        got: dict[str, str]

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            ok = parts.path == "/callback" and secrets.compare_digest(
                query.get("state", "").encode(), self.state.encode()) and "code" in query
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            text = ("Signed in: the command line has its token. You can close this tab." if ok
                    else "This is not the sign-in this command started; nothing was saved.")
            self.wfile.write(f"<!doctype html><title>artifactstore</title><p>{text}</p>"
                             .encode())
            if ok and not self.got:
                self.got.update(query)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # the code is a secret: never logged

    return type("Callback", (_Callback,), {"state": state, "got": got})


def _wait_for_code(origin: str, args: argparse.Namespace) -> tuple[str, str]:
    """Sign in through the browser; (the one-time code, the PKCE verifier)."""
    import http.server
    import webbrowser

    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    got: dict[str, str] = {}
    handler = _callback_handler(state, got)
    try:
        listener = http.server.HTTPServer(("127.0.0.1", 0), handler)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on 127.0.0.1 for the sign-in: "
                                 f"{exc.strerror or exc}") from None
    port = listener.server_address[1]
    url = f"{origin}/login/cli?" + urlencode(
        {"port": port, "state": state, "code_challenge": challenge})
    print(f"Open this URL in a browser to sign in to {origin}:\n{url}", file=sys.stderr,
          flush=True)
    if not args.no_browser:
        webbrowser.open(url)
    listener.timeout = 0.5  # wake up to check the deadline
    deadline = time.monotonic() + args.timeout
    try:
        while not got and time.monotonic() < deadline:
            listener.handle_request()
    finally:
        listener.server_close()
    if not got:
        raise NotSignedInError(f"no sign-in within {args.timeout:g} s; run artifactstore "
                               f"login {origin} again")
    return got["code"], verifier


def login(args: argparse.Namespace) -> Any:
    import socket  # here: ~10 ms to import, which `--help` does not need

    origin = _server(args)
    code, verifier = _wait_for_code(origin, args)
    answer = _call(origin, "POST", "/v1/login/exchange",
                   {"code": code, "code_verifier": verifier, "host": socket.gethostname()})
    token = answer.get("token")
    if not isinstance(token, str):
        raise BackendUnavailableError(f"{origin} sent no token; try again")
    path = save_token(origin, token)
    say(args, f"signed in to {origin} as {answer.get('email') or answer.get('subject')}; "
              f"token {answer.get('id')} saved in {path}")
    return {"server": origin, "subject": answer.get("subject"), "email": answer.get("email"),
            "token_id": answer.get("id"), "expires": answer.get("expires"),
            "saved": str(path)}


def logout(args: argparse.Namespace) -> Any:
    origin = _server(args)
    token = token_for(origin)
    revoked = False
    if token and token.startswith("ast1_") and token.count("_") >= 2:
        try:
            _call(origin, "DELETE", f"/v1/tokens/{token.split('_')[1]}", token=token)
            revoked = True
        except (NotSignedInError, NotFoundError):
            revoked = True  # already invalid there
        except BackendUnavailableError:
            print(f"artifactstore: warning: could not revoke the token on {origin}; "
                  "it stays valid until it expires", file=sys.stderr)
    forgot = forget_token(origin)
    say(args, f"signed out of {origin}" if forgot else f"no token was saved for {origin}")
    return {"server": origin, "forgotten": forgot, "revoked": revoked}


def whoami(args: argparse.Namespace) -> Any:
    origin = _server(args)
    token = token_for(origin)
    answer = _call(origin, "GET", "/v1/whoami", token=token)
    if not args.json:
        who = answer.get("email") or answer.get("user") or "anonymous"
        roles = answer.get("roles") or {}
        say(args, f"{who} on {origin}" + "".join(f"\n  {p}: {r}"
                                                 for p, r in sorted(roles.items())))
    return answer


# -- tokens ------------------------------------------------------------------------


def token_create(args: argparse.Namespace) -> Any:
    origin = _server(args)
    answer = _call(origin, "POST", "/v1/tokens", {
        "name": args.name, "projects": args.projects or None, "role": args.role,
        "days": args.days}, token=_token(origin))
    if not args.json:
        print(answer["token"])
        print(f"token {answer['id']} ({answer['role']} of "
              f"{', '.join(answer['projects'] or ['every project'])}) expires "
              f"{time.strftime('%Y-%m-%d', time.gmtime(answer['expires']))}; it is shown "
              "only now", file=sys.stderr)
    return answer


def token_list(args: argparse.Namespace) -> Any:
    origin = _server(args)
    answer = _call(origin, "GET", "/v1/tokens" + ("?all=1" if args.all else ""),
                   token=_token(origin))
    for item in answer.get("tokens", []):
        state = "revoked" if item.get("revoked") else time.strftime(
            "expires %Y-%m-%d", time.gmtime(item.get("expires", 0)))
        say(args, f"{item['id']}  {item['role']:<6}  {state:<18}  {item['name']}")
    return answer


def token_revoke(args: argparse.Namespace) -> Any:
    origin = _server(args)
    answer = _call(origin, "DELETE", f"/v1/tokens/{args.token_id}", token=_token(origin))
    say(args, f"token {args.token_id} revoked")
    return answer


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"use 1 to 3600 seconds, not {text!r}")
    return value


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 3660:
        raise argparse.ArgumentTypeError(f"use a whole number of days from 1, not {text!r}")
    return value


def register(add: Any, common: argparse.ArgumentParser) -> None:
    server_help = ("the team server, https://host[:port] (default: --store when it is "
                   "artifactstore+https://...)")
    p = add("login", login, "sign in to a team server through the browser and save "
                            "a token for it")
    p.add_argument("server", nargs="?", help=server_help)
    p.add_argument("--no-browser", action="store_true",
                   help="print the sign-in URL instead of opening a browser (default: open)")
    p.add_argument("--timeout", type=_seconds, default=300.0, metavar="SECONDS",
                   help="how long to wait for the browser sign-in (default 300)")
    p = add("logout", logout, "revoke and forget the token saved for a team server")
    p.add_argument("server", nargs="?", help=server_help)
    p = add("whoami", whoami, "show who a team server takes you for, and your roles")
    p.add_argument("server", nargs="?", help=server_help)
    p = add("token", None, "create, list or revoke API tokens of a team server (for CI)")
    sub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")

    def action(name: str, handler: Any, text: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=text,
                                                    description=text)
        q.set_defaults(handler=handler)
        q.add_argument("server", nargs="?", help=server_help)
        return q

    q = action("create", token_create, "make a token (printed once) for CI or a script")
    q.add_argument("--name", required=True, help="what the token is for (shown in lists)")
    q.add_argument("--scope", dest="projects", action="append", metavar="PROJECT",
                   help="a project the token may use (repeat for more; default: every "
                        "project you have a role in)")
    q.add_argument("--role", choices=ROLES, default="reader",
                   help="the highest role it carries (default reader)")
    q.add_argument("--days", type=_days, default=None, metavar="N",
                   help="days until it expires (default: the server's longest, 90)")
    q = action("list", token_list, "list your tokens (admins: --all for everyone's)")
    q.add_argument("--all", action="store_true",
                   help="every user's tokens (server admins only; default: yours)")
    q = action("revoke", token_revoke, "revoke a token at once")
    q.add_argument("token_id", metavar="ID", help="the token's id (token list shows it)")

