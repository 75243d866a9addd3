"""The team server (``artifactstore serve``): one store shared over HTTP with sign-in,
tokens, per-project roles, an audit log and the web UI (issue 18).

The server is a layer above :mod:`artifactstore.ui` and below :mod:`artifactstore.cli`.
It relays *objects*: a client opens ``artifactstore+https://host/`` as its store URL and
the whole library runs unchanged over :mod:`artifactstore.backends._server`, one HTTP
request per backend call (the object protocol, docs/design.md §8). The server decides
each request by its *key* and the caller's role, so it never needs a private project's
keys: it stores and relays ciphertext.

Modules:

- ``principal``: who is asking (:class:`Principal`) and the roles (:class:`Role`);
- ``settings``: the server's configuration (``server.toml`` and environment);
- ``objects``: the object protocol's routes over the backing store;
- ``authz``: which role a key and an action need, and the domain of each project;
- ``roles``: who holds which role in which project (the ``[roles]`` table);
- ``tokens``: API tokens (create, list, revoke, expiry, scope), kept in the store;
- ``signin``: OpenID Connect sign-in for browsers and for ``artifactstore login``;
- ``audit``: the append-only audit log of writes, deletes and membership changes;
- ``opengate``: the gate of an open server (``[roles] everyone = "..."``, no sign-in);
- ``app``: the Starlette app that puts them together with the web UI; ``run``: uvicorn.
"""
