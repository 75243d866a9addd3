"""The HTTP API of tokens (the ``token create``, ``list`` and ``revoke`` commands call it).

- ``POST /v1/tokens`` ``{"name", "projects": [...] or null, "role", "days"}``: a new
  token for the caller (signed in by a token or a browser session); 201 with the
  token string, shown this once. It can only narrow the caller's rights
  (:meth:`~artifactstore.server.tokens.TokenStore.create`).
- ``GET /v1/tokens``: the caller's own tokens (a server admin's: every token; ``?all=1``).
- ``DELETE /v1/tokens/<id>``: revoke one (its owner, or a server admin).

A browser session may call the writes only from this server's pages (authn.py's
same-origin rule); anonymous callers get 401.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from artifactstore.core.errors import ArtifactStoreError, InvalidInputError, NotSignedInError
from artifactstore.server.gate import Authenticator
from artifactstore.server.httpjson import error_response, json_body
from artifactstore.server.principal import Principal, Role
from artifactstore.server.tokens import RoleOf, TokenRecord, TokenStore

__all__ = ["token_routes"]

IsAdmin = Callable[[Principal], bool]


def token_routes(tokens: TokenStore, authenticator: Authenticator, role_of: RoleOf,
                 is_admin: IsAdmin | None = None) -> list[Route]:
    """The three routes over ``tokens``; ``is_admin`` says who is a server admin."""

    def caller(request: Request) -> Principal:
        principal = authenticator.principal(request)
        if principal.anonymous:
            raise NotSignedInError("sign in first: artifactstore login URL")
        return principal

    async def create(request: Request) -> Response:
        try:
            principal = await run_in_threadpool(caller, request)
            body = await json_body(request, limit=16384)
            token, record = await run_in_threadpool(make, principal, body)
        except ArtifactStoreError as exc:
            return error_response(exc)
        return JSONResponse({"token": token, **record.public()}, status_code=201,
                            headers={"Cache-Control": "no-store"})

    def make(principal: Principal, body: dict[str, Any]) -> tuple[str, TokenRecord]:
        projects = body.get("projects")
        if projects is not None and not (isinstance(projects, list)
                                         and all(isinstance(p, str) for p in projects)):
            raise InvalidInputError("projects is a list of project names, or null")
        role_text = body.get("role", "reader")
        days = body.get("days")
        if not isinstance(role_text, str) or (days is not None and type(days) is not int):
            raise InvalidInputError("role is reader, writer or admin; days a number")
        try:
            role = Role.parse(role_text)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        name = body.get("name")
        if not isinstance(name, str):
            raise InvalidInputError("give the token a name")
        return tokens.create(principal, name=name, projects=projects, role=role,
                             days=days, role_of=role_of)

    def listing(request: Request) -> Response:
        try:
            principal = caller(request)
        except ArtifactStoreError as exc:
            return error_response(exc)
        everyone = request.query_params.get("all") == "1" and is_admin is not None \
            and is_admin(principal)
        found: list[dict[str, Any]] = [
            record.public(revoked) for record, revoked in
            tokens.records(None if everyone else principal.subject)]
        return JSONResponse({"tokens": found}, headers={"Cache-Control": "no-store"})

    def revoke(request: Request) -> Response:
        try:
            principal = caller(request)
            admin = is_admin is not None and is_admin(principal)
            record = tokens.revoke(request.path_params["token_id"], principal, admin=admin)
        except ArtifactStoreError as exc:
            return error_response(exc)
        return JSONResponse({**record.public(True)})

    return [Route("/v1/tokens", create, methods=["POST"]),
            Route("/v1/tokens", listing, methods=["GET"]),
            Route("/v1/tokens/{token_id}", revoke, methods=["DELETE"])]
