"""``artifactstore ui``: the local web UI (artifactstore/ui/server.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from artifactstore.cli._common import open_existing, port_number, say


def ui(args: argparse.Namespace) -> Any:
    from artifactstore.ui.server import listen, load_app, serve

    with open_existing(args) as store:
        store.runs()  # fail now, with the CLI's message, if the project cannot be read
        listener = listen(args.host, args.port)
        if args.check:
            try:
                load_app(store, token=listener.token, loopback=listener.token is None)
            finally:
                listener.sock.close()
            say(args, f"ok: the UI can serve {store.url} (project {store.project}) "
                      f"on {args.host}")
            return {**listener.as_dict(), "checked": True}

        def started(bound: Any) -> None:
            if args.json:
                print(json.dumps({**bound.as_dict(), "checked": False}), flush=True)
            else:
                print(f"artifactstore UI of project {store.project}: {bound.url}\n"
                      "(Ctrl-C stops it)", flush=True)

        serve(store, listener, started)
    if not args.json:
        print("artifactstore UI stopped", file=sys.stderr)
    return 0


def register(add: Any, common: argparse.ArgumentParser) -> None:
    del common
    p = add("ui", ui, "serve the local web UI of a project (runs table, run pages)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; any other "
                        "address requires the random token printed in the URL)")
    p.add_argument("--port", type=port_number, default=0, metavar="N",
                   help="port to listen on (default 0: any free port)")
    p.add_argument("--check", action="store_true",
                   help="open the store, bind the address and exit without serving "
                        "(for scripts and tests)")
