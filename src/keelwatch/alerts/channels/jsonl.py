"""JSON lines: append each message to a file (flushed and fsynced before it counts as delivered)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from keelwatch.alerts.channels import DeliveryError
from keelwatch.config import ChannelSettings


class JsonlChannel:
    kind = "jsonl"

    def __init__(self, settings: ChannelSettings) -> None:
        assert settings.path
        self._path = Path(settings.path)

    def send(self, message: dict[str, Any], settings: ChannelSettings) -> str:
        line = json.dumps(message, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise DeliveryError(f"{settings.name}: cannot append to {self._path}: {exc.strerror or exc}") from None
        return f"appended to {self._path}"

    def close(self) -> None:
        pass
