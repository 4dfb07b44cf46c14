"""Deliver the outbox: claim due messages with a lease, send each through its channel, record the outcome.

At least once and never lost: a message leaves the outbox only when its channel accepted it; a
failure schedules the next try with exponential backoff (1 s, 2 s, 4 s … capped at
``retry_max``) and after ``max_attempts`` parks it as failed (``keelwatch alerts retry``). Each
outcome is committed on its own, so a sender killed mid-batch loses no more than the message in
flight, whose lease expires and which the next sender sends again — with the same idempotency key,
so the receiver can tell. Two senders never hold the same message (the lease, claimed under
``FOR UPDATE SKIP LOCKED`` on PostgreSQL).

``make_digests`` gathers the open alerts whose policy says "digest" into one message per channel.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keelwatch.alerts.channels import Channel, DeliveryError, open_channel
from keelwatch.alerts.engine import channel_takes
from keelwatch.config import AlertSettings, ChannelSettings
from keelwatch.store import Store
from keelwatch.store import alerts as stored

log = logging.getLogger(__name__)

def sender_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff(attempts: int, cap: timedelta) -> timedelta:
    """After ``attempts`` failures: 1 s, 2 s, 4 s … capped."""
    return min(timedelta(seconds=2 ** max(attempts - 1, 0)), cap)


@dataclass(slots=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0  # attempts that failed (will be retried)
    parked: int = 0  # gave up after max_attempts
    unknown_channel: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "failed": self.failed, "parked": self.parked,
                "unknown_channel": self.unknown_channel, "errors": self.errors[:20]}


def deliver(store: Store, settings: AlertSettings, *, owner: str | None = None, batch: int = 100,
            max_batches: int | None = None, clock: Callable[[], datetime] | None = None) -> DeliveryReport:
    """Send what is due, batch after batch, until nothing is due (or ``max_batches``).

    ``clock`` (default: the wall clock) decides what is due and when a retry is; tests move it.
    """
    owner = owner or sender_id()
    clock = clock or (lambda: datetime.now(UTC))
    channels = {c.name: c for c in settings.channels}
    opened: dict[str, Channel] = {}
    report = DeliveryReport()
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            moment = clock()
            lease = settings.lease + max((c.timeout for c in settings.channels), default=timedelta(0))
            with store.session() as session:
                claimed = stored.claim(session, owner=owner, now=moment, lease=lease, limit=batch)
            if not claimed:
                break
            batches += 1
            for message in claimed:
                _send_one(store, settings, channels, opened, message, owner, report, clock)
    finally:
        for channel in opened.values():
            channel.close()
    return report


def _send_one(store: Store, settings: AlertSettings, channels: dict[str, ChannelSettings],
              opened: dict[str, Channel], message: stored.Claimed, owner: str, report: DeliveryReport,
              clock: Callable[[], datetime]) -> None:
    config = channels.get(message.channel)
    started = time.perf_counter()
    ok, detail = False, ""
    if config is None:
        detail = f"channel {message.channel!r} is no longer configured"
        report.unknown_channel += 1
    else:
        try:
            channel = opened.get(config.name)
            if channel is None:
                channel = opened[config.name] = open_channel(config)
            detail = channel.send(message.body, config)
            ok = True
        except DeliveryError as exc:
            detail = str(exc)
        except Exception as exc:  # a channel bug must not stop the others; it is recorded and retried
            log.exception("channel %s failed on message %s", message.channel, message.id)
            detail = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    finished = clock()
    attempts = message.attempts + 1
    give_up = not ok and attempts >= settings.max_attempts
    with store.session() as session:
        stored.record_attempt(session, message, owner=owner, ok=ok, detail=detail, seconds=seconds, now=finished,
                              next_attempt=finished + backoff(attempts, settings.retry_max), give_up=give_up)
    if ok:
        report.delivered += 1
    elif give_up:
        report.parked += 1
        report.errors.append(detail)
    else:
        report.failed += 1
        report.errors.append(detail)


def make_digests(store: Store, settings: AlertSettings, *, now: datetime | None = None) -> int:
    """One digest message per channel with the open "digest" alerts not yet sent in one; how many queued."""
    now = now or datetime.now(UTC)
    with store.session() as session:
        pending = [a for a in stored.load_alerts(session, states={"open", "acknowledged"}, for_update=True).values()
                   if a.notify == "digest" and a.digested_at is None]
        if not pending:
            return 0
        pending.sort(key=lambda a: (a.due or now + timedelta(days=36500), a.id))
        rows = []
        for channel in settings.channels:
            items = [a.body for a in pending if channel_takes(channel, a.body)]
            if not items:
                continue
            key = f"digest:{channel.name}:{now.isoformat()}"
            body = {"id": key, "event": "digest", "idempotency_key": key, "created": now.isoformat(),
                    "count": len(items), "alerts": items}
            rows.append({"idempotency_key": key, "alert_id": None, "channel": channel.name, "event": "digest",
                         "body": body, "created": now, "next_attempt": now, "attempts": 0, "last_error": ""})
        for alert in pending:
            alert.digested_at = now
        return stored.add_outbox(session, rows)
