"""``static``: a CMDB export or hand-kept list of what runs — CSV, JSON or YAML, from a file or an http(s) URL.

The schema (stable: other tools write it):

- CSV: header ``cluster,namespace,workload_kind,workload,pod,container,image,digest`` (any order;
  ``digest`` may be empty). Optional columns: ``labels`` (a JSON object, or ``k=v;k=v``),
  ``owner``, ``team``, ``environment``, ``platform``, ``node``, ``state``.
- JSON / YAML: a list of objects with the same keys (``labels`` an object).

A row that cannot be read (no image, no container name, a cell of the wrong type) is skipped with
a problem naming its line, and the pod it names keeps what the last good sync stored for it. A
row with a bad reference or a bad digest is kept and marked: the reference error becomes its
``resolution_error``, a bad digest its ``problem``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from keelwatch import __version__
from keelwatch.config import InventorySourceSettings
from keelwatch.inventory.base import ContainerRecord, InventoryError, Ownership, Problem, Snapshot

REQUIRED = ("cluster", "namespace", "workload_kind", "workload", "pod", "container", "image", "digest")
OPTIONAL = ("labels", "owner", "team", "environment", "platform", "node", "state")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
MAX_BYTES = 256 << 20


class StaticSource:
    kind = "static"

    def __init__(self, settings: InventorySourceSettings) -> None:
        self.name = settings.name
        self.settings = settings
        self.ownership = Ownership.from_lists(settings.owner, settings.team, settings.environment)

    def close(self) -> None:
        pass

    def snapshot(self) -> Snapshot:
        data, fmt, where = self._read()
        rows, problems = parse(data, fmt, where)
        records: list[ContainerRecord] = []
        for line, row in rows:
            record, problem = self._record(row, f"{where}:{line}")
            if problem is not None:
                problems.append(problem)
            if record is not None:
                records.append(self.ownership.apply(record))
        return Snapshot(records, problems)

    def _read(self) -> tuple[bytes, str, str]:
        s = self.settings
        if s.path:
            path = Path(s.path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InventoryError(f"inventory {self.name}: cannot read {path}: {exc.strerror or exc}") from exc
            return data, s.format or _format_from_name(path.name) or _sniff(data), path.name
        assert s.url
        try:
            response = httpx.get(s.url, timeout=s.timeout.total_seconds(), follow_redirects=True,
                                 headers={"User-Agent": f"keelwatch/{__version__}",
                                          "Accept": "text/csv, application/json, application/yaml"})
        except httpx.HTTPError as exc:
            raise InventoryError(f"inventory {self.name}: cannot fetch {s.url}: {exc}", retryable=True) from exc
        if response.status_code != 200:
            raise InventoryError(f"inventory {self.name}: {s.url} answered {response.status_code}",
                                 retryable=response.status_code >= 500)
        if len(response.content) > MAX_BYTES:
            raise InventoryError(f"inventory {self.name}: {s.url} is larger than {MAX_BYTES >> 20} MiB")
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        fmt = (s.format or _format_from_content_type(content_type)
               or _format_from_name(httpx.URL(s.url).path) or _sniff(response.content))
        return response.content, fmt, s.url

    def _record(self, row: dict[str, Any], where: str) -> tuple[ContainerRecord | None, Problem | None]:
        text: dict[str, str] = {}
        for key in (*REQUIRED, *OPTIONAL):
            if key == "labels":
                continue
            value = row.get(key)
            if value is None:
                value = ""
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                return None, Problem(where, f"{key} must be a string, not {type(value).__name__}",
                                     _pod_of(row))
            text[key] = str(value).strip()
        pod = (text["namespace"], text["pod"])
        for key in ("container", "image"):
            if not text[key]:
                return None, Problem(where, f"no {key}", pod)
        labels = row.get("labels") or {}
        if isinstance(labels, str):
            try:
                labels = _parse_labels(labels)
            except ValueError as exc:
                return None, Problem(where, str(exc), pod)
        if not isinstance(labels, dict) or not all(isinstance(k, str) for k in labels):
            return None, Problem(where, "labels must be an object of strings", pod)
        digest: str | None = text["digest"] or None
        problem = None
        if digest is not None and not DIGEST.match(digest):
            problem = f"digest {digest!r} is not a sha256 or sha512 digest; ignored"
            digest = None
        return ContainerRecord(
            cluster=text["cluster"] or self.settings.cluster or "", namespace=text["namespace"],
            workload_kind=text["workload_kind"], workload=text["workload"], pod=text["pod"],
            container=text["container"], image=text["image"], digest=digest,
            platform=text["platform"] or self.settings.platform, node=text["node"], state=text["state"] or "listed",
            labels={k: str(v) for k, v in labels.items()}, owner=text["owner"], team=text["team"],
            environment=text["environment"], problem=problem,
        ), (Problem(where, problem) if problem else None)


def _pod_of(row: dict[str, Any]) -> tuple[str, str] | None:
    ns, pod = row.get("namespace"), row.get("pod")
    return (ns, pod) if isinstance(ns, str) and isinstance(pod, str) else None


def _parse_labels(text: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"labels are not a JSON object: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError("labels must be a JSON object")
        return {str(k): str(v) for k, v in doc.items()}
    labels = {}
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"labels: {part!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def _format_from_name(name: str) -> str | None:
    lowered = name.lower()
    for suffix, fmt in ((".csv", "csv"), (".json", "json"), (".yaml", "yaml"), (".yml", "yaml")):
        if lowered.endswith(suffix):
            return fmt
    return None


def _format_from_content_type(content_type: str) -> str | None:
    return {"text/csv": "csv", "application/json": "json", "application/yaml": "yaml", "text/yaml": "yaml",
            "application/x-yaml": "yaml", "text/x-yaml": "yaml"}.get(content_type)


def _sniff(data: bytes) -> str:
    head = data.lstrip()[:1]
    if head in (b"[", b"{"):
        return "json"
    first_line = data.split(b"\n", 1)[0]
    return "csv" if b"," in first_line and b":" not in first_line else "yaml"


def parse(data: bytes, fmt: str, where: str) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    """Rows (with their line or item number) and the problems of rows that are not even objects."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{where}: not UTF-8 (byte {exc.start})") from None
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InventoryError(f"{where}: CSV header lacks {', '.join(missing)} "
                                 f"(expected {','.join(REQUIRED)})")
        reader.fieldnames = header
        rows = []
        problems = []
        for row in reader:
            if None in row:
                problems.append(Problem(f"{where}:{reader.line_num}", "more cells than the header has columns",
                                        _pod_of(row)))
                continue
            rows.append((reader.line_num, row))
        return rows, problems
    try:
        doc = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InventoryError(f"{where}: not valid {fmt.upper()}: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(doc, list):
        raise InventoryError(f"{where}: expected a list of container objects, got {type(doc).__name__}")
    rows = []
    problems = []
    for i, item in enumerate(doc, 1):
        if isinstance(item, dict):
            rows.append((i, item))
        else:
            problems.append(Problem(f"{where}:[{i}]", f"expected an object, got {type(item).__name__}"))
    return rows, problems
