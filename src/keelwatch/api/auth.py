"""Bearer tokens on every ``/api/v1`` route, and the role each route needs.

``Depends(require("operator"))`` on a route: no or unknown or revoked token → 401, a token whose
role is below → 403. Tokens are checked against the store on every request, so a revocation
holds from the next request on. The dashboard uses the same tokens through a cookie (web/).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from keelwatch.api.errors import ApiError
from keelwatch.store import Store
from keelwatch.store import tokens as stored_tokens
from keelwatch.store.tokens import TokenInfo

bearer = HTTPBearer(auto_error=False, description="An API token: keelwatch token create --role viewer|operator|admin")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="keelwatch"'}


def authenticate(store: Store, token: str) -> TokenInfo | None:
    """The active token, or None; notes its use (at most once a minute, so reads stay reads)."""
    with store.session(write=False) as session:
        info = stored_tokens.check_token(session, token)
    if info is not None:
        now = datetime.now(UTC)
        if stored_tokens.needs_touch(info, now):
            with store.session() as session:
                stored_tokens.touch_token(session, info.id, now)
    return info


def require(role: str) -> Callable[..., TokenInfo]:
    """A dependency admitting tokens of ``role`` or above."""

    def dependency(request: Request,
                   credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> TokenInfo:
        if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
            raise ApiError(401, "unauthorized", "an API token is required (Authorization: Bearer TOKEN)",
                           hint="keelwatch token create --role viewer", headers=CHALLENGE)
        info = authenticate(request.app.state.store, credentials.credentials)
        if info is None:
            raise ApiError(401, "unauthorized", "the token is unknown or revoked", headers=CHALLENGE)
        if not stored_tokens.allows(info.role, role):
            raise ApiError(403, "forbidden", f"this needs the {role} role; the token is {info.role}")
        request.state.token = info
        return info

    dependency.__name__ = f"require_{role}"
    return dependency


viewer = require("viewer")
operator = require("operator")
admin = require("admin")
