"""API tokens (artifactstore/server/tokens.py, tokenapi.py, authn.py): made, verified,
listed and revoked in the backing store; forged, tampered, expired and revoked tokens
refused; a token only narrows its user's rights."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import urllib3

from artifactstore.backends import drop_memory_store, open_backend
from artifactstore.backends.base import Backend
from artifactstore.core.errors import (
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
)
from artifactstore.server.principal import Principal, Role
from artifactstore.server.tokens import TokenStore, looks_like_token
from artifactstore.testing.authharness import AuthHarness, auth_harness

if TYPE_CHECKING:
    from artifactstore.testing.oidc import OidcIssuer

ALICE = Principal(subject="company#alice", email="alice@example.com", name="Alice",
                  groups=frozenset({"ml-team"}))
BOB = Principal(subject="company#bob", email="bob@example.com")
SECRET = secrets.token_urlsafe(32).encode()
http = urllib3.PoolManager(retries=False)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backend() -> Iterator[Backend]:
    url = f"memory://tokens-{uuid.uuid4().hex[:8]}"
    yield open_backend(url)
    drop_memory_store(url)


def roles(table: dict[str, dict[str, Role]]) -> Any:
    def role_of(principal: Principal, project: str) -> Role:
        return table.get(principal.subject or "", {}).get(project, Role.NONE)
    return role_of


def test_a_token_acts_for_its_user_within_its_scope(backend: Backend) -> None:
    tokens = TokenStore(backend, SECRET)
    token, record = tokens.create(ALICE, name="ci", projects=["vision"], role=Role.WRITER,
                                  role_of=roles({ALICE.subject or "": {"vision": Role.ADMIN}}))
    assert looks_like_token(token)
    assert token.startswith(f"ast1_{record.id}_")
    who = tokens.verify(token)
    assert (who.subject, who.email, who.groups) == (ALICE.subject, ALICE.email, ALICE.groups)
    assert who.token_id == record.id
    assert who.scope is not None
    assert who.scope.allows("vision", Role.WRITER)
    assert not who.scope.allows("vision", Role.ADMIN)
    assert not who.scope.allows("audio", Role.READER)
    assert "ast1_" not in who.label


def test_the_store_never_holds_the_secret(backend: Backend) -> None:
    tokens = TokenStore(backend, SECRET)
    token, record = tokens.create(ALICE, name="ci")
    secret_part = token.split("_", 2)[2]
    held = b"".join(backend.get(k) for k in backend.list(""))
    assert record.id.encode() in held
    assert secret_part.encode() not in held
    # another server secret cannot verify the same records (a copied bucket is no key)
    with pytest.raises(NotSignedInError):
        TokenStore(backend, b"x" * 32).verify(token)


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), id="tampered-secret"),
    pytest.param(lambda t: t[:5] + "0" * 16 + t[21:], id="other-id"),
    pytest.param(lambda t: t.split("_")[0] + "_" + t.split("_")[1] + "_"
                 + secrets.token_urlsafe(32), id="forged-secret"),
    pytest.param(lambda t: "ast2" + t[4:], id="wrong-version"),
    pytest.param(lambda t: t + "x" * 100, id="too-long"),
    pytest.param(lambda t: "", id="empty"),
    pytest.param(lambda t: "../../server/tokens/x", id="path"),
])
def test_forged_and_tampered_tokens_are_refused(backend: Backend, mangle: Any) -> None:
    tokens = TokenStore(backend, SECRET)
    token, _ = tokens.create(ALICE, name="ci")
    with pytest.raises(NotSignedInError, match="not valid"):
        tokens.verify(mangle(token))


def test_expired_tokens_are_refused(backend: Backend) -> None:
    clock = Clock()
    tokens = TokenStore(backend, SECRET, token_days=30, clock=clock)
    token, record = tokens.create(ALICE, name="ci", days=2)
    assert record.expires == int(clock.now) + 2 * 86400
    clock.now += 2 * 86400 - 1
    assert tokens.verify(token).subject == ALICE.subject
    clock.now += 1
    with pytest.raises(NotSignedInError, match="expired"):
        tokens.verify(token)
    with pytest.raises(InvalidInputError, match="1 to 30 days"):
        tokens.create(ALICE, name="ci", days=31)


def test_revocation_is_immediate_here_and_within_the_cache_time_elsewhere(
        backend: Backend) -> None:
    here, there = TokenStore(backend, SECRET), TokenStore(backend, SECRET)
    token, record = here.create(ALICE, name="ci")
    assert here.verify(token).subject == there.verify(token).subject == ALICE.subject
    here.revoke(record.id, ALICE)
    with pytest.raises(NotSignedInError):
        here.verify(token)
    # the other instance answers from its cache (at most CACHE_SECONDS), then learns
    assert there.verify(token).subject == ALICE.subject
    there.cache_seconds = 0.0
    with pytest.raises(NotSignedInError):
        there.verify(token)
    with pytest.raises(NotSignedInError):
        TokenStore(backend, SECRET).verify(token)
    assert backend.exists(f"server/revoked/{record.id}")


def test_only_the_owner_or_an_admin_revokes(backend: Backend) -> None:
    tokens = TokenStore(backend, SECRET)
    token, record = tokens.create(ALICE, name="ci")
    with pytest.raises(NotFoundError):
        tokens.revoke(record.id, BOB)
    assert tokens.verify(token).subject == ALICE.subject
    tokens.revoke(record.id, BOB, admin=True)
    with pytest.raises(NotSignedInError):
        tokens.verify(token)
    with pytest.raises(InvalidInputError):
        tokens.revoke("../x", ALICE)


def test_a_token_only_narrows_its_users_rights(backend: Backend) -> None:
    tokens = TokenStore(backend, SECRET)
    role_of = roles({ALICE.subject or "": {"vision": Role.WRITER, "audio": Role.READER}})
    with pytest.raises(NotAuthorizedError, match="not admin of project 'vision'"):
        tokens.create(ALICE, name="x", projects=["vision"], role=Role.ADMIN, role_of=role_of)
    with pytest.raises(NotAuthorizedError, match="audio"):
        tokens.create(ALICE, name="x", projects=["vision", "audio"], role=Role.WRITER,
                      role_of=role_of)
    narrow, _ = tokens.create(ALICE, name="x", projects=["vision"], role=Role.WRITER,
                              role_of=role_of)
    holder = tokens.verify(narrow)
    # a token made with a token stays within the first one's scope
    with pytest.raises(NotAuthorizedError, match="within its own scope"):
        tokens.create(holder, name="y", projects=None, role=Role.READER, role_of=role_of)
    with pytest.raises(NotAuthorizedError, match="within its own scope"):
        tokens.create(holder, name="y", projects=["audio"], role=Role.READER,
                      role_of=role_of)
    tokens.create(holder, name="y", projects=["vision"], role=Role.READER, role_of=role_of)
    with pytest.raises(NotSignedInError):
        tokens.create(Principal(subject=None), name="z")


def test_listing_shows_ones_own_tokens(backend: Backend) -> None:
    tokens = TokenStore(backend, SECRET)
    _, mine = tokens.create(ALICE, name="a")
    _, theirs = tokens.create(BOB, name="b")
    tokens.revoke(mine.id, ALICE)
    assert [(r.id, revoked) for r, revoked in tokens.records(ALICE.subject)] == [
        (mine.id, True)]
    assert {r.id for r, _ in tokens.records()} == {mine.id, theirs.id}
    listed = mine.public(True)
    assert "mac" not in listed
    assert listed["revoked"] is True


# -- over HTTP ----------------------------------------------------------------------


@pytest.fixture
def harness(oidc_issuer: OidcIssuer) -> Iterator[AuthHarness]:
    with auth_harness(oidc_issuer, token_days=30) as found:
        found.roles = {"company#alice": {"vision": Role.ADMIN, "audio": Role.READER}}
        yield found


def call(harness: AuthHarness, method: str, path: str, token: str | None = None,
         body: Any = None, **headers: str) -> tuple[int, Any]:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) \
        else body
    response = http.request(method, harness.url + path, body=data, headers=headers,
                            redirect=False)
    try:
        return response.status, json.loads(response.data)
    except ValueError:
        return response.status, response.data


def test_the_token_api(harness: AuthHarness) -> None:
    first, _ = harness.tokens.create(ALICE, name="login")
    status, made = call(harness, "POST", "/v1/tokens", first,
                        {"name": "ci", "projects": ["vision"], "role": "writer", "days": 7})
    assert status == 201
    assert looks_like_token(made["token"])
    assert made["projects"] == ["vision"]
    status, me = call(harness, "GET", "/me", made["token"])
    assert (status, me["subject"], me["token"]) == (200, ALICE.subject, made["id"])
    status, listed = call(harness, "GET", "/v1/tokens", first)
    assert status == 200
    assert {t["name"] for t in listed["tokens"]} == {"login", "ci"}
    assert all("token" not in t and "mac" not in t for t in listed["tokens"])
    assert call(harness, "DELETE", f"/v1/tokens/{made['id']}", first)[0] == 200
    status, refused = call(harness, "GET", "/me", made["token"])
    assert (status, refused["error"]) == (401, "not_signed_in")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"name": "x", "projects": ["audio"], "role": "writer"}, 403, "not_authorized"),
    ({"name": "x", "role": "owner"}, 400, "bad_request"),
    ({"name": "x", "days": 31}, 400, "bad_request"),
    ({"name": "x", "projects": "vision"}, 400, "bad_request"),
    ({"projects": None}, 400, "bad_request"),
    (b"[1, 2", 400, "bad_request"),
    (b"{" + b" " * 20000 + b"}", 413, "too_large"),
])
def test_bad_token_requests(harness: AuthHarness, body: Any, status: int,
                            code: str) -> None:
    token, _ = harness.tokens.create(ALICE, name="login")
    got, answer = call(harness, "POST", "/v1/tokens", token, body)
    assert (got, answer["error"]) == (status, code)


def test_anonymous_and_broken_credentials_get_401(harness: AuthHarness) -> None:
    assert call(harness, "POST", "/v1/tokens", None, {"name": "x"})[1]["error"] \
        == "not_signed_in"
    assert call(harness, "GET", "/v1/tokens")[0] == 401
    for header in ("Basic YWxpY2U6cHc=", "Bearer", "Bearer ast1_00_00", "token x"):
        status, answer = call(harness, "GET", "/me", None, Authorization=header)
        assert (status, answer["error"]) == (401, "not_signed_in"), header
    other, _ = harness.tokens.create(BOB, name="b")
    mine, record = harness.tokens.create(ALICE, name="a")
    assert call(harness, "DELETE", f"/v1/tokens/{record.id}", other)[0] == 404
    assert call(harness, "GET", "/me", mine)[1]["subject"] == ALICE.subject
