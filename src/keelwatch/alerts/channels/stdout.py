"""Standard output: one JSON line per message (for a pipe, or a container's log collector)."""

from __future__ import annotations

import json
import sys
from typing import Any

from keelwatch.config import ChannelSettings


class StdoutChannel:
    kind = "stdout"

    def __init__(self, settings: ChannelSettings) -> None:
        pass

    def send(self, message: dict[str, Any], settings: ChannelSettings) -> str:
        sys.stdout.write(json.dumps(message, sort_keys=True, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        return "written to stdout"

    def close(self) -> None:
        pass
