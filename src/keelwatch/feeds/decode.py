"""Decoding helpers every feed shares: JSON, string-only YAML, timestamps, gzip sniffing.

Not a feed (the registry test knows the non-feed modules by name).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

# Plain json: orjson parsed the shared OSV zips only ~5% faster (0.87 s vs 0.92 s for 17,836
# records, most of the time is building the model objects), not worth a dependency.
JSON_ERRORS: tuple[type[Exception], ...] = (json.JSONDecodeError, UnicodeDecodeError)


def loads(data: bytes | str) -> Any:
    return json.loads(data)


def dumps(value: Any) -> str:
    """Compact JSON text for the ``*_specific`` fields, keys in the publisher's order (stable per record)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _string_loader() -> type:
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StringLoader(base):  # type: ignore[misc, valid-type]
        """YAML with every plain scalar a string, except null.

        Versions are text: a safe loader would read ``1.10`` as the float 1.1, ``0`` as an int and a
        ``modified:`` timestamp as a datetime. Advisory YAML (PyPA's records, Alpine's secdb) means
        the characters as written.
        """

    StringLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    return StringLoader


_StringLoader = _string_loader()


def load_yaml(data: bytes | str) -> Any:
    """YAML → Python with scalars kept as strings (see ``_StringLoader``). Raises ``yaml.YAMLError``."""
    return yaml.load(data, Loader=_StringLoader)  # noqa: S506 - a safe loader with fewer resolvers


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 / ISO 8601 timestamp → aware datetime (UTC when the text has no zone).

    NVD writes ``2022-12-21T21:15:09.130`` (no zone, meaning UTC); OSV writes ``…Z``. Raises
    ``ValueError`` for text that is not a timestamp; ``None`` and ``""`` give ``None``.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if len(text) == 10:  # a bare date (KEV, some OSV exporters)
        text += "T00:00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def sniff(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(8)


def read_maybe_gzip(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (EPSS, NVD, tracker dumps)."""
    with path.open("rb") as fh:
        head = fh.read(2)
        fh.seek(0)
        if head == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=fh) as gz:
                return gz.read()
        return fh.read()


def iter_object_items(text: str) -> Iterator[tuple[str, Any]]:
    """The top-level ``key: value`` pairs of a JSON object, decoded one value at a time.

    The Debian tracker's JSON is one object of ~40,000 packages (tens of MB): decoding it whole
    builds every package's dict at once. Here only the text and one package's value are alive.
    Raises ``ValueError`` (``json.JSONDecodeError``) for text that is not one JSON object.
    """
    decoder = json.JSONDecoder()
    n = len(text)
    i = _skip_ws(text, 0)
    if i >= n or text[i] != "{":
        raise json.JSONDecodeError("expected a JSON object", text, i)
    i = _skip_ws(text, i + 1)
    if i < n and text[i] == "}":
        _expect_end(text, i + 1)
        return
    while True:
        key, i = decoder.raw_decode(text, i)
        if not isinstance(key, str):
            raise json.JSONDecodeError("expected a string key", text, i)
        i = _skip_ws(text, i)
        if i >= n or text[i] != ":":
            raise json.JSONDecodeError("expected ':'", text, i)
        value, i = decoder.raw_decode(text, _skip_ws(text, i + 1))
        yield key, value
        i = _skip_ws(text, i)
        if i < n and text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if i < n and text[i] == "}":
            _expect_end(text, i + 1)
            return
        raise json.JSONDecodeError("expected ',' or '}'", text, i)


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    return i


def _expect_end(text: str, i: int) -> None:
    if _skip_ws(text, i) != len(text):
        raise json.JSONDecodeError("extra data after the JSON object", text, i)
