"""``artifactstore serve``: the team server (artifactstore/server/)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Final

from artifactstore.cli._common import port_number, say
from artifactstore.core.errors import InvalidInputError, MissingExtraError, StoreNotFoundError

SERVER_EXTRA: Final = ("the team server needs starlette, uvicorn, jinja2, authlib and "
                       "itsdangerous: pip install 'artifactstore[server]'")
SERVER_MODULES: Final = frozenset({"starlette", "uvicorn", "jinja2", "authlib",
                                   "itsdangerous", "anyio", "h11"})


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"use 1 to 64 worker processes, not {text!r}")
    return value


def serve(args: argparse.Namespace) -> Any:
    from artifactstore.backends import redact_url
    from artifactstore.backends._endpoints import is_loopback_host
    from artifactstore.server.settings import load_settings

    settings = load_settings(args.config, store=args.store)
    if settings.server_identity is not None:
        # The server's own identity (docs/server.md, "Private projects"): the web UI opens
        # the private projects it is a member of with it, in this process and its workers.
        from artifactstore.core.privatefiles import CONFIG_DIR_ENV

        os.environ[CONFIG_DIR_ENV] = os.path.expanduser(settings.server_identity)
    try:
        import uvicorn  # noqa: F401  (checked here so --check finds it missing too)

        from artifactstore.server.app import create_server_app
        from artifactstore.server.opengate import open_role
        from artifactstore.server.run import bind, log_to_stderr, serve_workers
        from artifactstore.server.run import serve as run
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in SERVER_MODULES:
            raise MissingExtraError(SERVER_EXTRA) from exc
        raise
    log_to_stderr(quiet=args.check)
    app = create_server_app(settings)
    store = app.state.objects.backend
    shown = redact_url(settings.store_url)
    try:
        initialized = store.exists("config")
        if args.check and not initialized:
            raise StoreNotFoundError.at(shown)
        if (args.tls_cert is None) != (args.tls_key is None):
            raise InvalidInputError("--tls-cert and --tls-key go together: the certificate "
                                    "and its private key")
        tls = None if args.tls_cert is None else (args.tls_cert, args.tls_key)
        bound = bind(args.host, args.port, tls=tls)
    except BaseException:
        store.close()
        raise
    if not is_loopback_host(args.host) and bound.tls is None:
        print(f"artifactstore: serving plain HTTP on {args.host}: put a TLS proxy in front "
              "(clients refuse artifactstore+http:// off loopback)", file=sys.stderr)
    if (not is_loopback_host(args.host) and settings.public_url is None
            and open_role(settings.roles) is not None):
        print("artifactstore: an open server answers only requests to a loopback name; "
              "set public_url in its settings to the address people use", file=sys.stderr)
    if not initialized:
        print(f"artifactstore: the store {shown} has no config yet: /readyz answers 503 "
              f"until 'artifactstore init {bound.store_url}' creates it", file=sys.stderr)
    if args.check:
        bound.sock.close()
        store.close()
        say(args, f"ok: the server can serve {shown} on {args.host}")
        return {**bound.as_dict(), "store": shown, "checked": True}

    def started(where: Any) -> None:
        if args.json:
            print(json.dumps({**where.as_dict(), "store": shown, "checked": False}),
                  flush=True)
        else:
            print(f"artifactstore server of {shown}: {where.url}\n"
                  f"clients use --store {where.store_url}  (Ctrl-C stops it)", flush=True)

    if args.workers > 1:
        store.close()  # each worker opens its own
        serve_workers(args.workers, bound, config=args.config, store=args.store,
                      started=started)
    else:
        run(app, bound, started)
    print("artifactstore server stopped", file=sys.stderr)  # stderr: the log, even with --json
    return 0


def register(add: Any, common: argparse.ArgumentParser) -> None:
    del common
    p = add("serve", serve, "serve a store to a team over HTTP (sign-in, roles, the web UI)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="the server's settings, a TOML file (default: none; then --store "
                        "is needed, and ARTIFACTSTORE_SERVER_SECRET always is)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 "
                        "for every interface, behind a TLS proxy)")
    p.add_argument("--port", type=port_number, default=8080, metavar="N",
                   help="port to listen on (default 8080; 0: any free port)")
    p.add_argument("--tls-cert", metavar="FILE", default=None,
                   help="serve HTTPS with this PEM certificate chain (default: plain HTTP, "
                        "for a TLS proxy in front)")
    p.add_argument("--tls-key", metavar="FILE", default=None,
                   help="the private key of --tls-cert (default: none)")
    p.add_argument("--workers", type=_workers, default=1, metavar="N",
                   help="worker processes sharing the port (default 1; one per core "
                        "serves more clients)")
    p.add_argument("--check", action="store_true",
                   help="check the settings and the store, bind the address and exit "
                        "without serving (default: serve)")
