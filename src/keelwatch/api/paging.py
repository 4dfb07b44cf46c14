"""Sorting and cursor pagination for list endpoints.

A cursor is opaque to clients: URL-safe base64 of the sort it belongs to and the sort key of the
last item served. The next page starts strictly after that key, so items added or removed
between two requests never make a page repeat or skip one that stayed (unlike an offset). Every
sort key ends with the item's unique id, so keys are total.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from keelwatch.api.errors import ApiError

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):  # noqa: UP046 - Python 3.11 has no PEP 695 syntax
    items: list[T]
    next_cursor: str | None
    total: int

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next_cursor": self.next_cursor, "total": self.total}


def encode_cursor(sort: str, key: Sequence[Any]) -> str:
    raw = json.dumps({"s": sort, "k": list(key)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw)
        key = doc["k"]
        if not isinstance(key, list) or not isinstance(doc.get("s"), str):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", "the cursor is not one this API gave out",
                       hint="pass next_cursor from the previous page unchanged") from None
    if doc["s"] != sort:
        raise ApiError(400, "bad_cursor", f"the cursor belongs to sort {doc['s']!r}, not {sort!r}",
                       hint="keep the same sort while paging")
    return key


def _comparable(value: Any) -> tuple[int, Any]:
    # None sorts first; numbers and strings never meet in one key position; lists compare item by item.
    if value is None:
        return (0, 0)
    if isinstance(value, list | tuple):
        return (3, tuple(_comparable(v) for v in value))
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def paginate(items: Sequence[T], *, sort: str, keys: dict[str, Callable[[T], Any]], id_of: Callable[[T], Any],
             cursor: str | None, limit: int) -> Page[T]:
    """Sort ``items`` by ``sort`` (a key of ``keys``, ``-`` before it for descending), then one page."""
    field = sort.removeprefix("-")
    descending = sort.startswith("-")
    if field not in keys:
        raise ApiError(400, "bad_sort", f"cannot sort by {field!r}", hint=f"one of {', '.join(sorted(keys))}")
    by = keys[field]

    def key_of(item: T) -> list[Any]:
        return [by(item), id_of(item)]

    def comparable(key: Sequence[Any]) -> tuple[tuple[int, Any], ...]:
        return tuple(_comparable(v) for v in key)

    ordered = sorted(items, key=lambda i: comparable(key_of(i)), reverse=descending)
    start = 0
    if cursor:
        after = comparable(decode_cursor(cursor, sort))
        start = len(ordered)
        for n, item in enumerate(ordered):
            k = comparable(key_of(item))
            try:
                beyond = k < after if descending else k > after
            except TypeError:
                raise ApiError(400, "bad_cursor", "the cursor is not one this API gave out") from None
            if beyond:
                start = n
                break
    page = ordered[start:start + limit]
    more = start + limit < len(ordered)
    next_cursor = encode_cursor(sort, key_of(page[-1])) if page and more else None
    return Page(page, next_cursor, len(ordered))
