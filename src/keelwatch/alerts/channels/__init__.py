"""Alert channels: one module per ``[[alerts.channels]] kind``, each a ``Channel``.

A channel sends one message (the alert JSON, ``event`` and ``idempotency_key`` included) and
raises ``DeliveryError`` when it was not accepted; the outbox retries with backoff.
"""

from __future__ import annotations

from typing import Any, Protocol

from keelwatch.config import ChannelSettings
from keelwatch.errors import KeelwatchError


class DeliveryError(KeelwatchError):
    """A channel did not accept a message (the outbox will try again)."""


class Channel(Protocol):
    kind: str

    def send(self, message: dict[str, Any], settings: ChannelSettings) -> str:
        """Deliver ``message``; return a short note for the attempt log (e.g. "HTTP 200")."""
        ...

    def close(self) -> None: ...


def open_channel(settings: ChannelSettings) -> Channel:
    from keelwatch.alerts.channels import apprise, jsonl, stdout, webhook

    kinds: dict[str, type] = {"webhook": webhook.WebhookChannel, "apprise": apprise.AppriseChannel,
                              "jsonl": jsonl.JsonlChannel, "stdout": stdout.StdoutChannel}
    return kinds[settings.kind](settings)  # type: ignore[no-any-return]
