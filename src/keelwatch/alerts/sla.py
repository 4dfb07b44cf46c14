"""Remediation deadlines by owner: open alerts, due soon, breached (``keelwatch sla`` and the API)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from keelwatch.store.tables import AlertRow


def parse_soon(value: str) -> timedelta:
    """``72h`` or ``7d``; ValueError otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([dh])", value.strip())
    if not match:
        raise ValueError(f"{value!r}: write hours or days, e.g. 72h or 7d")
    hours = float(match.group(1)) * (24 if match.group(2) == "d" else 1)
    if hours > 24 * 3650:
        raise ValueError(f"{value!r}: at most ten years")
    return timedelta(hours=hours)


def sla_by_owner(alerts: Iterable[AlertRow], soon: timedelta, now: datetime) -> dict[str, Any]:
    """Totals and one row per owner (an alert reaching several owners counts for each), most breached first."""
    horizon = now + soon
    by_owner: dict[str, dict[str, Any]] = {}
    totals = {"open": 0, "due_soon": 0, "breached": 0}
    for a in alerts:
        breached = a.due is not None and a.due <= now
        due_soon = a.due is not None and now < a.due <= horizon
        totals["open"] += 1
        totals["breached"] += breached
        totals["due_soon"] += due_soon
        for owner in a.body.get("owners") or ["(no owner)"]:
            row = by_owner.setdefault(owner, {"owner": owner, "open": 0, "due_soon": 0, "breached": 0,
                                              "next_due": None, "breached_alerts": []})
            row["open"] += 1
            if breached:
                row["breached"] += 1
                row["breached_alerts"].append({"id": a.id, "advisory": a.advisory, "due": a.due.isoformat()})
            elif due_soon:
                row["due_soon"] += 1
            upcoming = a.due.isoformat() if a.due is not None and a.due > now else None
            if upcoming and (row["next_due"] is None or upcoming < row["next_due"]):
                row["next_due"] = upcoming
    rows = sorted(by_owner.values(), key=lambda r: (-r["breached"], -r["due_soon"], r["owner"]))
    return {"soon_seconds": int(soon.total_seconds()), **totals, "items": rows}
