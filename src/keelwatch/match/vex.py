"""Suppressions: VEX statements (OpenVEX, CycloneDX VEX) and time-limited risk acceptances.

A suppression never deletes or hides a finding: findings are stored as matched, and whether one
counts is decided when it is read (``suppressions``), so a VEX statement withdrawn, an acceptance
expired or revoked, brings the finding back without any re-match, and ``suppressed: true`` stays
queryable.

Rules:

* A VEX statement concerns a finding when it names the finding's advisory id or one of its
  aliases, its product is the finding's image (a ``sha256:`` digest, a ``pkg:oci/…@sha256:…``
  purl, or an image reference/name; a reference with a digest must match the digest) or the
  finding's package (a purl), and its subcomponent, when there is one, is the finding's package.
  Purls are compared on type, namespace and name (PyPI names PEP 503-normalised) and on version
  when the statement gives one.
* Of the statements that concern a finding, the latest (statement timestamp, else the document's,
  else its import time) decides, as OpenVEX's "later statements supersede earlier ones":
  ``not_affected`` and ``fixed`` suppress; ``affected`` and ``under_investigation`` do not.
* Otherwise an acceptance suppresses it while ``until`` is in the future and it is not revoked,
  when it names the advisory or an alias, the image (digest, name, or ``*`` for every image) and,
  if it names one, the package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from packageurl import PackageURL
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from keelwatch.errors import InvalidReference, KeelwatchError
from keelwatch.model import Suppression
from keelwatch.names import normalise_name
from keelwatch.store import Store
from keelwatch.store.findings import StoredFinding
from keelwatch.store.tables import ImageRow, RiskAcceptanceRow, VexStatementRow

SUPPRESSING = ("not_affected", "fixed")
STATUSES = ("not_affected", "fixed", "affected", "under_investigation")
# CycloneDX analysis.state → OpenVEX status.
_CDX_STATE = {"not_affected": "not_affected", "false_positive": "not_affected", "resolved": "fixed",
              "resolved_with_pedigree": "fixed", "exploitable": "affected", "in_triage": "under_investigation"}


class VexError(KeelwatchError):
    """A VEX document cannot be read."""


@dataclass(frozen=True, slots=True)
class Statement:
    vulnerability: str
    product: str
    subcomponent: str
    status: str
    justification: str = ""
    detail: str = ""
    issued: datetime | None = None


@dataclass(slots=True)
class VexDocument:
    document: str
    format: str  # openvex, cyclonedx
    statements: list[Statement] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportReport:
    document: str
    format: str
    statements: int
    replaced: int
    problems: tuple[str, ...]


# --- reading documents ----------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _id(value: Any) -> str:
    """An OpenVEX product/vulnerability/subcomponent: a string (v0.0.x) or an object with ``@id``/``name``."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        for key in ("@id", "name", "id"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key]).strip()
        identifiers = value.get("identifiers")
        if isinstance(identifiers, dict):
            for key in ("purl", "cpe23", "cpe22"):
                if isinstance(identifiers.get(key), str):
                    return str(identifiers[key])
    return ""


def parse_openvex(doc: dict[str, Any], name: str) -> VexDocument:
    """OpenVEX (https://github.com/openvex/spec): v0.0.x string products and v0.2 objects."""
    out = VexDocument(document=str(doc.get("@id") or name), format="openvex")
    issued = _time(doc.get("last_updated")) or _time(doc.get("timestamp"))
    statements = doc.get("statements")
    if not isinstance(statements, list):
        raise VexError(f"{name}: an OpenVEX document needs a 'statements' list")
    for n, s in enumerate(statements):
        where = f"statements[{n}]"
        if not isinstance(s, dict):
            out.problems.append(f"{where}: not an object")
            continue
        vulnerability = _id(s.get("vulnerability"))
        status = s.get("status")
        if not vulnerability or status not in STATUSES:
            out.problems.append(f"{where}: needs a vulnerability and a status (one of {', '.join(STATUSES)})")
            continue
        products = s.get("products") or []
        if not isinstance(products, list) or not products:
            out.problems.append(f"{where}: names no product")
            continue
        when = _time(s.get("last_updated")) or _time(s.get("timestamp")) or issued
        detail = s.get("impact_statement") or s.get("action_statement") or s.get("status_notes") or ""
        for product in products:
            product_id = _id(product)
            subcomponents = [_id(c) for c in (product.get("subcomponents") or [])] if isinstance(product, dict) \
                else []
            subcomponents += [_id(c) for c in (s.get("subcomponents") or [])]  # v0.0.x: on the statement
            if not product_id:
                out.problems.append(f"{where}: a product without an @id")
                continue
            for sub in [c for c in subcomponents if c] or [""]:
                out.statements.append(Statement(vulnerability, product_id, sub, str(status),
                                                str(s.get("justification") or ""), str(detail), when))
    return out


def parse_cyclonedx(doc: dict[str, Any], name: str) -> VexDocument:
    """CycloneDX VEX (``vulnerabilities[].analysis``, ``affects[].ref``), 1.4 to 1.6."""
    out = VexDocument(document=str(doc.get("serialNumber") or name), format="cyclonedx")
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    issued = _time(metadata.get("timestamp"))
    subject = metadata.get("component") if isinstance(metadata.get("component"), dict) else {}
    # The product the document speaks about: its component's digest or purl, else nothing (then
    # each affected ref must be a package purl, which applies in every image).
    product = ""
    version = str(subject.get("version") or "")
    if version.startswith("sha256:"):
        product = version
    elif subject.get("purl"):
        product = str(subject["purl"])
    refs: dict[str, str] = {}
    for component in doc.get("components") or []:
        if isinstance(component, dict) and component.get("bom-ref"):
            refs[str(component["bom-ref"])] = str(component.get("purl") or component["bom-ref"])
    if subject.get("bom-ref"):
        refs.setdefault(str(subject["bom-ref"]), product)
    vulnerabilities = doc.get("vulnerabilities")
    if not isinstance(vulnerabilities, list):
        raise VexError(f"{name}: a CycloneDX VEX document needs a 'vulnerabilities' list")
    for n, v in enumerate(vulnerabilities):
        where = f"vulnerabilities[{n}]"
        if not isinstance(v, dict) or not v.get("id"):
            out.problems.append(f"{where}: needs an id")
            continue
        analysis = v.get("analysis") if isinstance(v.get("analysis"), dict) else {}
        status = _CDX_STATE.get(str(analysis.get("state") or ""))
        if status is None:
            out.problems.append(f"{where}: no analysis.state (one of {', '.join(sorted(_CDX_STATE))})")
            continue
        when = _time(analysis.get("lastUpdated")) or _time(v.get("updated")) or issued
        affects = [a for a in v.get("affects") or [] if isinstance(a, dict) and a.get("ref")]
        if not affects:
            out.problems.append(f"{where}: affects nothing")
            continue
        for affected in affects:
            ref = refs.get(str(affected["ref"]), str(affected["ref"]))
            if ref == product or ref.startswith("sha256:") or ref.startswith("pkg:oci/"):
                target, sub = ref, ""
            else:
                target, sub = (product, ref) if product else (ref, "")
            out.statements.append(Statement(str(v["id"]), target, sub, status,
                                            str(analysis.get("justification") or ""),
                                            str(analysis.get("detail") or ""), when))
    return out


def parse_document(data: bytes, name: str) -> VexDocument:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VexError(f"{name}: not JSON ({exc})", hint="keelwatch reads OpenVEX and CycloneDX VEX JSON") from None
    if not isinstance(doc, dict):
        raise VexError(f"{name}: a VEX document is a JSON object")
    if "statements" in doc:
        return parse_openvex(doc, name)
    if doc.get("bomFormat") == "CycloneDX":
        return parse_cyclonedx(doc, name)
    raise VexError(f"{name}: neither OpenVEX (statements) nor CycloneDX (bomFormat) VEX")


def import_vex(store: Store, path: Path, *, now: datetime | None = None) -> ImportReport:
    """Store a VEX document's statements, replacing what an earlier import of it said (one transaction)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VexError(f"cannot read {path}: {exc.strerror or exc}") from None
    parsed = parse_document(data, path.name)
    if not parsed.statements:
        raise VexError(f"{path.name}: no usable statement" + (f" ({'; '.join(parsed.problems[:3])})"
                                                              if parsed.problems else ""))
    now = now or datetime.now(UTC)
    unique = {(s.vulnerability, s.product, s.subcomponent): s for s in parsed.statements}  # the last one wins
    with store.session() as session:
        replaced = session.execute(delete(VexStatementRow).where(VexStatementRow.document == parsed.document)).rowcount
        session.execute(insert(VexStatementRow), [
            {"document": parsed.document, "format": parsed.format, "vulnerability": s.vulnerability,
             "product": s.product, "subcomponent": s.subcomponent, "status": s.status,
             "justification": s.justification, "detail": s.detail, "issued": s.issued, "imported_at": now}
            for s in unique.values()])
    return ImportReport(parsed.document, parsed.format, len(unique), replaced or 0, tuple(parsed.problems))


# --- acceptances ----------------------------------------------------------------------------------------


def image_target(text: str) -> str:
    """What an acceptance's ``--image`` is stored as: ``*``, a digest, or a normalised image name."""
    text = text.strip()
    if text == "*" or text.startswith("sha256:"):
        return text
    from keelwatch.images.reference import parse_reference

    ref = parse_reference(text.removeprefix("registry:"))
    return ref.digest or ref.name


def accept(store: Store, vulnerability: str, *, image: str, until: datetime, reason: str, package: str = "",
           created_by: str = "", now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    if until <= now:
        raise KeelwatchError(f"--until {until.date().isoformat()} is not in the future")
    if not reason.strip():
        raise KeelwatchError("a risk acceptance needs a --reason")
    try:
        target = image_target(image)
    except InvalidReference as exc:
        raise KeelwatchError(f"--image: {exc}") from None
    with store.session() as session:
        return int(session.execute(insert(RiskAcceptanceRow).values(
            vulnerability=vulnerability.strip(), image=target, package=package.strip(), until=until,
            reason=reason.strip(), created_by=created_by, created_at=now).returning(RiskAcceptanceRow.id)).scalar_one())


def revoke(store: Store, acceptance_id: int, *, now: datetime | None = None) -> bool:
    with store.session() as session:
        return bool(session.execute(update(RiskAcceptanceRow).where(
            RiskAcceptanceRow.id == acceptance_id, RiskAcceptanceRow.revoked_at.is_(None))
            .values(revoked_at=now or datetime.now(UTC))).rowcount)


# --- applying them --------------------------------------------------------------------------------------


def _purl_key(text: str) -> tuple[str, str, str, str | None] | None:
    try:
        p = PackageURL.from_string(text)
    except ValueError:
        return None
    name = normalise_name("PyPI", p.name) if p.type == "pypi" else p.name.lower() if p.type != "maven" else p.name
    namespace = (p.namespace or "").lower() if p.type != "maven" else (p.namespace or "")
    version = unquote(p.version) if p.version else None
    return p.type, namespace, name, version


def _purl_matches(pattern: str, purl: str) -> bool:
    a, b = _purl_key(pattern), _purl_key(purl)
    if a is None or b is None:
        return False
    return a[:3] == b[:3] and (a[3] is None or a[3] == b[3])


@dataclass(frozen=True, slots=True)
class ImageIdentity:
    digest: str
    index_digest: str | None
    names: frozenset[str]  # normalised repository names (docker.io/library/nginx)


def image_identity(session: Session, digest: str) -> ImageIdentity:
    names: set[str] = set()
    index_digest = None
    from keelwatch.images.reference import parse_reference

    for name, reference, index in session.execute(select(ImageRow.name, ImageRow.reference, ImageRow.index_digest)
                                                  .where(ImageRow.manifest_digest == digest)):
        index_digest = index_digest or index
        for text in (name, reference):
            if not text or text.split(":", 1)[0] in ("oci-archive", "docker-archive", "oci-dir", "dir"):
                continue  # a file, not a repository
            try:
                names.add(parse_reference(text.removeprefix("registry:")).name)
            except InvalidReference:
                continue
    return ImageIdentity(digest, index_digest, frozenset(names))


def _product_is_image(product: str, image: ImageIdentity) -> bool | None:
    """True/False for an image product; None when the product is a package purl."""
    digests = {image.digest, image.index_digest} - {None}
    if product.startswith("sha256:"):
        return product in digests
    if product.startswith("pkg:"):
        try:
            p = PackageURL.from_string(product)
        except ValueError:
            return False
        if p.type != "oci":
            return None
        if p.version:
            return unquote(p.version) in digests
        repository = (p.qualifiers or {}).get("repository_url") if isinstance(p.qualifiers, dict) else None
        if repository:
            return any(n == repository or n.endswith("/" + repository) for n in image.names)
        return any(n.rsplit("/", 1)[-1] == p.name for n in image.names)
    from keelwatch.images.reference import parse_reference

    try:
        ref = parse_reference(product.removeprefix("registry:"))
    except InvalidReference:
        return False
    if ref.digest:
        return ref.digest in digests
    return ref.name in image.names


def suppressions(session: Session, image_digest: str, findings: Sequence[StoredFinding],
                 now: datetime | None = None) -> dict[str, Suppression]:
    """Finding key → why it does not count, for those of ``findings`` a VEX statement or acceptance covers."""
    if not findings:
        return {}
    now = now or datetime.now(UTC)
    names_of = {s.key: {s.finding.id, *s.finding.advisory_ids, *s.finding.aliases, *s.finding.upstream}
                for s in findings}
    wanted = sorted(set().union(*names_of.values()))
    statements: list[VexStatementRow] = []
    acceptances: list[RiskAcceptanceRow] = []
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        statements.extend(session.execute(select(VexStatementRow)
                                          .where(VexStatementRow.vulnerability.in_(chunk))).scalars())
        acceptances.extend(session.execute(select(RiskAcceptanceRow).where(
            RiskAcceptanceRow.vulnerability.in_(chunk), RiskAcceptanceRow.revoked_at.is_(None),
            RiskAcceptanceRow.until > now)).scalars())
    if not statements and not acceptances:
        return {}
    image = image_identity(session, image_digest)
    out: dict[str, Suppression] = {}
    for stored in findings:
        names, package = names_of[stored.key], stored.finding.package
        applicable = [s for s in statements if s.vulnerability in names and _statement_applies(s, image, package.purl)]
        if applicable:
            latest = max(applicable, key=lambda s: (s.issued or s.imported_at, s.imported_at, s.id))
            if latest.status in SUPPRESSING:
                out[stored.key] = Suppression(kind="vex", status=latest.status, justification=latest.justification,
                                              reason=latest.detail, source=latest.document)
                continue
        for a in sorted(acceptances, key=lambda a: a.until, reverse=True):
            if a.vulnerability in names and _acceptance_applies(a, image, package.name):
                out[stored.key] = Suppression(kind="acceptance", status="accepted", reason=a.reason, until=a.until,
                                              source=a.created_by or f"acceptance {a.id}")
                break
    return out


def _statement_applies(s: VexStatementRow, image: ImageIdentity, purl: str) -> bool:
    on_image = _product_is_image(s.product, image)
    if on_image is None:  # the product is a package: applies in every image that has it
        return _purl_matches(s.product, purl)
    return on_image and (not s.subcomponent or _purl_matches(s.subcomponent, purl))


def _acceptance_applies(a: RiskAcceptanceRow, image: ImageIdentity, package: str) -> bool:
    if a.package and a.package.lower() != package.lower():
        return False
    return a.image == "*" or a.image in {image.digest, image.index_digest} or a.image in image.names


def suppressions_many(session: Session, findings: dict[str, Sequence[StoredFinding]],
                      now: datetime | None = None) -> dict[str, dict[str, Suppression]]:
    """``suppressions`` for many images: one read of the statements and acceptances in force.

    Only images holding a finding that some statement or acceptance names are looked at further,
    so a fleet with few suppressions pays two small queries.
    """
    now = now or datetime.now(UTC)
    named = set(session.execute(select(VexStatementRow.vulnerability).distinct()).scalars())
    named |= set(session.execute(select(RiskAcceptanceRow.vulnerability).distinct().where(
        RiskAcceptanceRow.revoked_at.is_(None), RiskAcceptanceRow.until > now)).scalars())
    if not named:
        return {}
    out: dict[str, dict[str, Suppression]] = {}
    for digest, found in findings.items():
        if any(named.intersection((s.finding.id, *s.finding.advisory_ids, *s.finding.aliases, *s.finding.upstream))
               for s in found):
            quiet = suppressions(session, digest, found, now)
            if quiet:
                out[digest] = quiet
    return out


def suppressions_for(store: Store, image_digest: str, findings: Sequence[StoredFinding],
                     now: datetime | None = None) -> dict[str, Suppression]:
    with store.session(write=False) as session:
        return suppressions(session, image_digest, findings, now)


def list_statements(session: Session) -> list[VexStatementRow]:
    return list(session.execute(select(VexStatementRow).order_by(VexStatementRow.id)).scalars())


def list_acceptances(session: Session, *, include_inactive: bool = False,
                     now: datetime | None = None) -> list[RiskAcceptanceRow]:
    query = select(RiskAcceptanceRow).order_by(RiskAcceptanceRow.id)
    if not include_inactive:
        query = query.where(RiskAcceptanceRow.revoked_at.is_(None),
                            RiskAcceptanceRow.until > (now or datetime.now(UTC)))
    return list(session.execute(query).scalars())
