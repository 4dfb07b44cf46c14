"""The alert policy: which severity pages, which waits for the digest, and when the fix is due.

Per severity (``[alerts.policy.SEVERITY]``: ``notify`` immediate | digest | none, ``due_days``),
with the seeds' defaults (Critical: now, 72 h; High: now, 30 days; Medium/Low: the digest; an
unrated advisory pages like High). A KEV-listed finding is handled as Critical by default.
``[[alerts.overrides]]`` change notify/due for containers whose namespace, owner, team,
environment or cluster match the given globs (the first matching override wins): e.g.
``environment = "dev"`` → ``notify = "none"``. One alert covers every container that runs the
image: it pages if any of them pages, and is due at the earliest of their deadlines.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from keelwatch.config import AlertOverride, AlertSettings, SeverityPolicy
from keelwatch.store.alerts import RunningContainer

_URGENCY = {"immediate": 2, "digest": 1, "none": 0}
SEVERITIES = ("critical", "high", "medium", "low", "unknown")


@dataclass(frozen=True, slots=True)
class Decision:
    severity: str  # as handled (KEV → critical)
    notify: str  # immediate, digest, none
    due_days: float | None


def handled_severity(settings: AlertSettings, severity: str, kev: bool) -> str:
    return "critical" if kev and settings.kev_as_critical else (severity if severity in SEVERITIES else "unknown")


def _matches(override: AlertOverride, container: RunningContainer | None, severity: str) -> bool:
    if override.severity is not None and override.severity != severity:
        return False
    for key in ("namespace", "owner", "team", "environment", "cluster"):
        pattern = getattr(override, key)
        if pattern is None:
            continue
        if container is None or not fnmatch.fnmatchcase(getattr(container, key), pattern):
            return False
    return True


def _for_one(settings: AlertSettings, severity: str, container: RunningContainer | None) -> Decision:
    rule: SeverityPolicy = getattr(settings.policy, severity)
    notify, due = rule.notify, rule.due_days
    override = next((o for o in settings.overrides if _matches(o, container, severity)), None)
    if override is not None:
        notify = override.notify or notify
        due = override.due_days if override.due_days is not None else due
    return Decision(severity, notify, due)


def decide(settings: AlertSettings, severity: str, kev: bool, containers: Iterable[RunningContainer]) -> Decision:
    """The alert's handling over all the containers running the image (none: the image runs nowhere)."""
    handled = handled_severity(settings, severity, kev)
    decisions = [_for_one(settings, handled, c) for c in containers] or [_for_one(settings, handled, None)]
    notify = max((d.notify for d in decisions), key=_URGENCY.__getitem__)
    dues = [d.due_days for d in decisions if d.due_days is not None and d.notify != "none"]
    return Decision(handled, notify, min(dues) if dues else None)


def due_date(first_raised: datetime, due_days: float | None) -> datetime | None:
    return None if due_days is None else first_raised + timedelta(days=due_days)


def rank(severity: str) -> int:
    """critical 4 … unknown 0."""
    return len(SEVERITIES) - 1 - SEVERITIES.index(severity) if severity in SEVERITIES else 0


def at_least(severity: str, minimum: str) -> bool:
    # "unknown" as a minimum takes everything; an unknown alert passes a channel whose minimum is
    # high or lower (unrated is not harmless), but not a critical-only channel.
    if minimum == "unknown":
        return True
    effective = "high" if severity == "unknown" else severity
    return rank(effective) >= rank(minimum)
