"""Generic webhook: POST the alert JSON, signed.

Headers: ``Content-Type: application/json``, ``X-Keelwatch-Signature: sha256=<hex HMAC-SHA256 of
the exact body bytes with the channel's secret>`` (when a secret is set), ``X-Keelwatch-Event``
(opened, updated, resolved, due_soon, breached, digest) and ``Idempotency-Key`` (stable per
message: a receiver that already saw it should answer 2xx and do nothing). Any 2xx is delivered;
anything else, a timeout or a connection error is a failure to retry. Schema: docs/alerts.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from keelwatch import __version__
from keelwatch.alerts.channels import DeliveryError
from keelwatch.config import ChannelSettings


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    kind = "webhook"

    def __init__(self, settings: ChannelSettings) -> None:
        timeout = settings.timeout.total_seconds()
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                    headers={"User-Agent": f"keelwatch/{__version__}"})

    def send(self, message: dict[str, Any], settings: ChannelSettings) -> str:
        body = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Keelwatch-Event": str(message.get("event", "")),
                   "Idempotency-Key": str(message.get("idempotency_key", ""))}
        if settings.secret:
            headers["X-Keelwatch-Signature"] = signature(settings.secret, body)
        assert settings.url
        try:
            response = self._client.post(settings.url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError(f"{settings.name}: timed out after {settings.timeout.total_seconds():g}s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{settings.name}: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"{settings.name}: HTTP {response.status_code} {response.text[:200]!r}")
        return f"HTTP {response.status_code}"

    def close(self) -> None:
        self._client.close()
