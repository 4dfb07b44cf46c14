"""API tokens: created, listed, revoked and checked. Only a token's sha256 is stored.

A token is ``kw_`` + 32 random bytes (URL-safe base64): far too much entropy to guess, so a plain
sha256 is enough (no slow hash needed, unlike a password). It is shown once, at creation. A check
looks the hash up by its unique index, then compares it in constant time.

Roles are ordered: ``viewer`` (read) < ``operator`` (read, import VEX, accept risks, trigger scans)
< ``admin`` (everything, tokens included). A route asks for the least role it needs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from keelwatch.errors import KeelwatchError
from keelwatch.store.tables import ApiTokenRow

ROLES = ("viewer", "operator", "admin")
TOKEN_PREFIX = "kw_"
#: How much of a token listings show (``kw_`` and a few characters): enough to tell tokens apart.
SHOWN_CHARS = 8
#: ``last_used`` is written at most this often per token: a busy client must not make every read a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(KeelwatchError):
    """A token cannot be created or revoked as asked (unknown role, unknown token)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token as listings show it: never the secret."""

    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role, "prefix": self.prefix,
                "created_at": self.created_at.isoformat(),
                "last_used": self.last_used.isoformat() if self.last_used else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def role_rank(role: str) -> int:
    """0 for viewer, 1 operator, 2 admin; an unknown role ranks below everything."""
    return ROLES.index(role) if role in ROLES else -1


def allows(role: str, needed: str) -> bool:
    """Whether a token of ``role`` may do what needs ``needed``."""
    return role_rank(role) >= role_rank(needed) >= 0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _info(r: ApiTokenRow) -> TokenInfo:
    return TokenInfo(id=r.id, name=r.name, role=r.role, prefix=r.prefix, created_at=r.created_at,
                     last_used=r.last_used, revoked_at=r.revoked_at)


def create_token(session: Session, role: str, *, name: str = "", now: datetime | None = None) -> tuple[str, TokenInfo]:
    """A new token of ``role``: the secret (to show once) and what is stored about it."""
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}", hint=f"one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = now or datetime.now(UTC)
    values = {"name": name.strip(), "role": role, "token_hash": hash_token(token), "prefix": token[:SHOWN_CHARS],
              "created_at": now, "last_used": None, "revoked_at": None}
    token_id = session.execute(insert(ApiTokenRow).values(**values).returning(ApiTokenRow.id)).scalar_one()
    return token, TokenInfo(id=int(token_id), name=values["name"], role=role, prefix=values["prefix"],
                            created_at=now, last_used=None, revoked_at=None)


def list_tokens(session: Session, *, include_revoked: bool = False) -> list[TokenInfo]:
    query = select(ApiTokenRow).order_by(ApiTokenRow.id)
    if not include_revoked:
        query = query.where(ApiTokenRow.revoked_at.is_(None))
    return [_info(r) for r in session.execute(query).scalars()]


def revoke_token(session: Session, ident: str, *, now: datetime | None = None) -> list[TokenInfo]:
    """Revoke the active tokens named by ``ident``: an id, a name, or a prefix shown by listings.

    A name or prefix that matches several tokens revokes none (``TokenError``): say the id.
    """
    query = select(ApiTokenRow).where(ApiTokenRow.revoked_at.is_(None))
    if ident.isdigit():
        rows = list(session.execute(query.where(ApiTokenRow.id == int(ident))).scalars())
    else:
        rows = list(session.execute(query.where(ApiTokenRow.name == ident)).scalars())
        if not rows and ident.startswith(TOKEN_PREFIX):
            rows = [r for r in session.execute(query).scalars() if ident.startswith(r.prefix)
                    or r.prefix.startswith(ident)]
    if not rows:
        raise TokenError(f"no active token {ident!r}", hint="keelwatch token list shows ids, names and prefixes")
    if len(rows) > 1:
        raise TokenError(f"{ident!r} names {len(rows)} tokens ({', '.join(str(r.id) for r in rows)})",
                         hint="revoke by id")
    now = now or datetime.now(UTC)
    session.execute(update(ApiTokenRow).where(ApiTokenRow.id == rows[0].id).values(revoked_at=now))
    return [_info(r) for r in rows]


def check_token(session: Session, token: str) -> TokenInfo | None:
    """The active token ``token`` is, or None (unknown, malformed or revoked). Reads only."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    row = session.execute(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
        return None
    return _info(row)


def needs_touch(info: TokenInfo, now: datetime) -> bool:
    """Whether ``last_used`` is stale enough to be written again."""
    return info.last_used is None or now - info.last_used >= LAST_USED_RESOLUTION


def touch_token(session: Session, token_id: int, now: datetime) -> None:
    session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used=now))
