"""Slack, Teams, email, PagerDuty, ntfy … through Apprise (https://github.com/caronc/apprise): ``url``
is an Apprise URL (``slack://…``, ``msteams://…``, ``mailtos://…``). The message is a short text
(title: severity and advisory; body: images, workloads, owners, due date, the fix)."""

from __future__ import annotations

from typing import Any

from keelwatch.alerts.channels import DeliveryError
from keelwatch.config import ChannelSettings


def render(message: dict[str, Any]) -> tuple[str, str]:
    event = message.get("event", "")
    if event == "digest":
        items = message.get("alerts", [])
        title = f"keelwatch digest: {len(items)} findings to plan for the next remediation cycle"
        lines = [f"- {a['severity']} {a['advisory']} on {', '.join(i['reference'] or i['digest'] for i in a['images'])}"
                 f" (due {a['due'] or 'none'})" for a in items]
        return title, "\n".join(lines)
    title = f"[{message.get('severity', '?').upper()}] {message.get('advisory')} {event}"
    workloads = ", ".join(f"{w['namespace']}/{w['name']}" for w in message.get("workloads", ()))
    workloads = workloads or "no running workload"
    body = "\n".join([
        message.get("summary") or "",
        f"Images: {', '.join(i['reference'] or i['digest'] for i in message.get('images', ()))}",
        f"Workloads: {workloads}",
        f"Owners: {', '.join(message.get('owners', ())) or 'unknown'}",
        f"Due: {message.get('due') or 'no deadline'}" + ("  (KEV: known exploited)" if message.get("kev") else ""),
        f"Fix: {message.get('remediation', '')}",
    ])
    return title, body.strip()


class AppriseChannel:
    kind = "apprise"

    def __init__(self, settings: ChannelSettings) -> None:
        import apprise as apprise_lib

        self._apprise = apprise_lib.Apprise()
        if not self._apprise.add(settings.url):
            raise DeliveryError(f"{settings.name}: Apprise does not understand the url")

    def send(self, message: dict[str, Any], settings: ChannelSettings) -> str:
        title, body = render(message)
        if not self._apprise.notify(title=title, body=body):
            raise DeliveryError(f"{settings.name}: Apprise reported a failed notification")
        return "sent through Apprise"

    def close(self) -> None:
        pass
