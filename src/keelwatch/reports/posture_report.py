"""``keelwatch report``: the fleet's posture for machines (JSON, CSV, SARIF) and humans (HTML, PDF).

The HTML is one self-contained page (inline CSS and SVG charts: severity distribution, top images
by risk, the trend from posture snapshots), and the PDF is that page printed by WeasyPrint, so
the two always say the same thing.
"""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import datetime
from typing import Any

from keelwatch import __version__
from keelwatch.posture import compute

COLORS = {"critical": "#8b0000", "high": "#d9480f", "medium": "#e8a317", "low": "#4682b4", "unknown": "#888888"}
_VALUES = ("containers", "images", "counts", "total", "kev", "fixable", "epss_over_threshold", "risk",
           "unknown_posture", "unknown_reasons", "oldest_scan", "scan_age_seconds")


def report_data(fleet: compute.Fleet, by: str, trend: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"generated_at": fleet.now.isoformat(), "keelwatch": __version__, "by": by,
            "summary": compute.summary(fleet), "rows": compute.group_by(fleet, by),
            "top_exposures": compute.top_exposures(fleet), "remediation_plan": compute.remediation_plan(fleet),
            "freshness": compute.freshness(fleet), "trend": trend or []}


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2)


def to_csv(data: dict[str, Any]) -> str:
    rows = data["rows"]
    keys = [k for k in (rows[0] if rows else {}) if k not in _VALUES]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*keys, "containers", "images", *compute.SEVERITIES, "total", "kev", "fixable", "risk",
                     "unknown_posture"])
    for r in rows:
        writer.writerow([*(r[k] for k in keys), r["containers"], r["images"],
                         *(r["counts"][s] for s in compute.SEVERITIES), r["total"], r["kev"], r["fixable"], r["risk"],
                         r["unknown_posture"]])
    return out.getvalue()


def to_sarif(fleet: compute.Fleet) -> str:
    """Every open finding on a running image, one SARIF run; containers in each result's properties."""
    from keelwatch.reports.sarif import to_sarif as image_sarif

    rules: dict[str, Any] = {}
    results: list[Any] = []
    running: dict[str, list[compute.ContainerPosture]] = {}
    for c in fleet.containers:
        if c.image is not None:
            running.setdefault(c.image.digest, []).append(c)
    for digest, containers in sorted(running.items()):
        reference = containers[0].values.reference or containers[0].values.image
        doc = json.loads(image_sarif({"digest": digest, "reference": reference}, fleet.images[digest].findings))
        run = doc["runs"][0]
        for rule in run["tool"]["driver"]["rules"]:
            rules.setdefault(rule["id"], rule)
        where = [f"{c.values.cluster}/{c.values.namespace}/{c.values.workload}/{c.values.pod}" for c in containers]
        for result in run["results"]:
            result["properties"]["containers"] = where
            results.append(result)
    return json.dumps({"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
                       "runs": [{"tool": {"driver": {"name": "keelwatch", "version": __version__,
                                                     "informationUri": "https://github.com/keelwatch/keelwatch",
                                                     "rules": [rules[k] for k in sorted(rules)]}},
                                 "results": results}]}, indent=2)


# --- HTML and PDF ---------------------------------------------------------------------------------------


def _bars(items: list[tuple[str, float, str]], width: int = 520, bar: int = 22) -> str:
    """A horizontal bar chart as inline SVG: (label, value, colour)."""
    if not items:
        return "<p class='muted'>nothing to chart</p>"
    top = max(v for _, v, _ in items) or 1
    label_w = 190
    height = len(items) * (bar + 6) + 4
    parts = [f"<svg width='{width}' height='{height}' role='img' xmlns='http://www.w3.org/2000/svg'>"]
    for i, (label, value, colour) in enumerate(items):
        y = i * (bar + 6) + 2
        w = max(1, int((width - label_w - 60) * value / top)) if value else 0
        parts.append(f"<text x='0' y='{y + bar - 6}' font-size='12'>{html.escape(label[:30])}</text>"
                     f"<rect x='{label_w}' y='{y}' width='{w}' height='{bar}' fill='{colour}'/>"
                     f"<text x='{label_w + w + 6}' y='{y + bar - 6}' font-size='12'>{value:g}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _trend(points: list[dict[str, Any]], width: int = 520, height: int = 160) -> str:
    if len(points) < 2:
        return "<p class='muted'>the trend appears after two posture snapshots (keelwatch posture snapshot)</p>"
    values = [p["risk"] for p in points]
    top = max(values) or 1
    step = (width - 40) / (len(points) - 1)
    coords = " ".join(f"{20 + i * step:.1f},{height - 20 - (height - 40) * v / top:.1f}" for i, v in enumerate(values))
    return (f"<svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg'>"
            f"<polyline fill='none' stroke='#d9480f' stroke-width='2' points='{coords}'/>"
            f"<text x='20' y='{height - 4}' font-size='11'>{html.escape(points[0]['taken_at'][:10])}</text>"
            f"<text x='{width - 90}' y='{height - 4}' font-size='11'>{html.escape(points[-1]['taken_at'][:10])}</text>"
            f"<text x='20' y='12' font-size='11'>risk (max {top:g})</text></svg>")


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(data: dict[str, Any]) -> str:
    s = data["summary"]
    counts = s["counts"]
    severity_chart = _bars([(label, counts[label], COLORS[label]) for label in compute.SEVERITIES])
    top_images = sorted({(p["image"], p["risk_removed"]) for p in data["remediation_plan"]}, key=lambda x: -x[1])[:8]
    images_chart = _bars([(image, round(risk), "#d9480f") for image, risk in top_images])
    rows = data["rows"]
    keys = [k for k in (rows[0] if rows else {}) if k not in _VALUES]
    posture_table = _table([*keys, "containers", *compute.SEVERITIES, "KEV", "fixable", "risk"],
                           [[*(r[k] for k in keys), r["containers"], *(r["counts"][x] for x in compute.SEVERITIES),
                             r["kev"], r["fixable"], r["risk"]] for r in rows[:40]])
    exposures = _table(["advisory", "severity", "KEV", "containers", "workloads"],
                       [[e["advisory"], e["severity"], "yes" if e["kev"] else "", e["containers"],
                         ", ".join(e["workloads"][:3])] for e in data["top_exposures"]])
    plan = _table(["image", "containers", "critical fixable", "bump", "owners"],
                  [[p["image"], p["containers"], p["critical_fixable"],
                    "; ".join(f"{x['name']} {x['installed']} → {'/'.join(x['fixed'])}" for x in p["packages"][:4]),
                    ", ".join(p["owners"])] for p in data["remediation_plan"]])
    generated = datetime.fromisoformat(data["generated_at"]).strftime("%Y-%m-%d %H:%M UTC")
    cards = "".join(f"<div class='card' style='border-color:{COLORS[label]}'><b>{counts[label]}</b>{label}</div>"
                    for label in compute.SEVERITIES)
    stale = "<p class='stale'>Some data is stale: see freshness in the JSON report.</p>" \
        if data["freshness"]["stale"] else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keelwatch posture report</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #222; font-size: 13px; }}
h1 {{ font-size: 22px; margin-bottom: 0; }} h2 {{ font-size: 16px; margin-top: 28px; border-bottom: 1px solid #ccc; }}
.muted {{ color: #777; }} .stale {{ color: #8b0000; }}
.cards {{ display: flex; gap: 10px; margin: 12px 0; }}
.card {{ border-left: 6px solid; padding: 6px 12px; background: #f6f6f6; min-width: 80px; }}
.card b {{ display: block; font-size: 20px; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 8px; }}
th, td {{ border-bottom: 1px solid #e2e2e2; padding: 4px 6px; text-align: left; font-size: 11px; }}
th {{ background: #f0f0f0; }}
</style></head><body>
<h1>keelwatch posture report</h1>
<p class="muted">{generated} · {s["containers"]} running containers · {s["images"]} images ·
{s["unknown_posture"]} of unknown posture · {s["kev"]} KEV-listed findings in production · risk {s["risk"]:g}</p>
{stale}
<div class="cards">{cards}</div>
<h2>Severity distribution (distinct findings on running images)</h2>{severity_chart}
<h2>Top images by risk a rebuild removes</h2>{images_chart}
<h2>Trend</h2>{_trend(data["trend"])}
<h2>Posture by {html.escape(data["by"])}</h2>{posture_table}
<h2>Top exposures</h2>{exposures}
<h2>Remediation plan</h2>{plan}
<p class="muted">keelwatch {html.escape(data["keelwatch"])}</p>
</body></html>"""


def to_pdf(data: dict[str, Any]) -> bytes:
    from weasyprint import HTML

    return HTML(string=to_html(data)).write_pdf()  # type: ignore[no-any-return]
