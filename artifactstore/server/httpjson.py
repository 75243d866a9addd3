"""The JSON side of the server's small APIs (tokens, CLI login): bounded JSON bodies
and the protocol's error answers ``{"error": "<code>", "message": "<one line>"}``
(docs/design.md §8): 401 ``not_signed_in``, 403 ``not_authorized``, 400
``bad_request``, 404 ``not_found``, 413 ``too_large``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from artifactstore.core.errors import (
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
)

__all__ = ["TooLarge", "error_response", "json_body"]


class TooLarge(InvalidInputError):
    """A request body over its route's limit."""


async def json_body(request: Request, *, limit: int) -> dict[str, Any]:
    """The request's JSON object, read up to ``limit`` bytes (TooLarge past it)."""
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request body is over {limit} bytes")
        chunks.append(chunk)
    try:
        found = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        raise InvalidInputError("the request body is not JSON") from None
    if not isinstance(found, dict):
        raise InvalidInputError("the request body must be a JSON object")
    return found


def error_response(exc: Exception) -> JSONResponse:
    """The answer for ``exc`` (unexpected shapes of a signed payload are bad requests)."""
    if isinstance(exc, NotSignedInError):
        status, code = 401, "not_signed_in"
    elif isinstance(exc, NotAuthorizedError):
        status, code = 403, "not_authorized"
    elif isinstance(exc, TooLarge):
        status, code = 413, "too_large"
    elif isinstance(exc, NotFoundError):
        status, code = 404, "not_found"
    else:
        status, code = 400, "bad_request"
    message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if not isinstance(exc, (NotSignedInError, NotAuthorizedError, NotFoundError,
                            InvalidInputError)):
        message = "malformed request"
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers={"Cache-Control": "no-store"})
