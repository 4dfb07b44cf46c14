"""``import_sbom``: read an SBOM another tool (or keelwatch) wrote into a CatalogResult.

The format is detected from the document, one reader per format, listed here one line each and
tried in order. The image is identified by the manifest digest when the SBOM carries one, else by
a stable digest of its package set (``result.extra["sbom"]["identity"]`` says which); either way
``image.source_kind`` is ``"sbom"``. Anything unreadable is an SbomError with a one-line reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from keelwatch.errors import SbomError
from keelwatch.model import CatalogResult
from keelwatch.sbom import from_cyclonedx, from_spdx, from_syft, from_trivy


class Reader(NamedTuple):
    name: str
    detect: Callable[[dict[str, Any]], bool]
    read: Callable[[dict[str, Any], str], CatalogResult]


READERS: tuple[Reader, ...] = (
    Reader(from_cyclonedx.NAME, from_cyclonedx.detect, from_cyclonedx.read),
    Reader(from_spdx.NAME, from_spdx.detect, from_spdx.read),
    Reader(from_syft.NAME, from_syft.detect, from_syft.read),
    Reader(from_trivy.NAME, from_trivy.detect, from_trivy.read),
)
if len({r.name for r in READERS}) != len(READERS):
    raise RuntimeError("an SBOM reader is registered twice")

FORMATS = tuple(r.name for r in READERS)


def detect_format(doc: Any) -> str:
    """The name of the reader for ``doc`` (a parsed JSON value), or SbomError saying what it is not."""
    if not isinstance(doc, dict):
        raise SbomError(f"not an SBOM: the JSON document is a {type(doc).__name__}, not an object",
                        hint="expected " + ", ".join(FORMATS))
    for reader in READERS:
        if reader.detect(doc):
            return reader.name
    keys = ", ".join(sorted(doc)[:6]) or "none"
    raise SbomError(f"not an SBOM keelwatch reads (top-level keys: {keys})", hint="expected " + ", ".join(FORMATS))


def import_sbom(data: bytes, source_name: str) -> CatalogResult:
    """Parse ``data`` (an SBOM file's bytes; ``source_name`` names it in messages and as the
    image's reference) in whichever supported format it is."""
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise SbomError(f"{source_name}: not JSON (not UTF-8 text: {exc.reason})") from exc
    except json.JSONDecodeError as exc:
        stripped = data.lstrip()[:200]
        if stripped.startswith(b"<"):
            hint = "XML SBOMs are not read; export JSON"
        elif b"SPDXVersion:" in stripped:
            hint = "SPDX tag-value is not read; export SPDX JSON"
        else:
            hint = None
        raise SbomError(f"{source_name}: not JSON ({exc.msg} at line {exc.lineno})", hint=hint) from exc
    try:
        name = detect_format(doc)
    except SbomError as exc:
        raise SbomError(f"{source_name}: {exc.message}", hint=exc.hint) from exc
    reader = next(r for r in READERS if r.name == name)
    try:
        return reader.read(doc, source_name)
    except SbomError as exc:
        raise SbomError(f"{source_name}: {exc.message}", hint=exc.hint) from exc
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        # A document of the right format but the wrong shape somewhere we did not guard.
        raise SbomError(f"{source_name}: malformed {name} document ({type(exc).__name__}: {exc})") from exc
