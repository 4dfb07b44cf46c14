"""Write tests/match/data/<scenario>.tsv from the oracle: ``python tests/match/make_expected.py [SCENARIO …]``.

Run it by hand when a shared image or feed changes, read the diff, and commit it with the reason:
the files are the reviewed truth the matcher is held to, not a snapshot of what it does.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, so "match" is this package

from match import oracle  # noqa: E402
from match.scenarios import SCENARIOS, Scenario, catalog, oracle_packages  # noqa: E402

SHARED = Path(os.environ.get("KEELWATCH_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "data"


def render(scenario: Scenario) -> str:
    result = catalog(SHARED / "images", scenario.image)
    packages = oracle_packages(result, scenario.ecosystem)
    records = oracle.raw_records(SHARED / "feeds" / "osv" / scenario.feed)
    found = oracle.expectations(packages, records)
    lines = [
        f"# {scenario.image} against feeds/osv/{scenario.feed}, ecosystem {scenario.ecosystem}",
        f"# {scenario.note}",
        "# Written by tests/match/make_expected.py from the oracle in tests/match/oracle.py (raw JSON,",
        "# packaging/dpkg/SemVer comparators, interval formulation of OSV ranges); reviewed, then committed.",
        f"# {len(records)} records read, {sum(1 for r in records if r.get('withdrawn'))} withdrawn (never match).",
        "#",
        f"# Packages judged ({len(set(packages))} distinct (name, version)):",
    ]
    for package in sorted(set(packages), key=lambda p: (p.name, p.version)):
        binaries = sorted({p.name for p in result.packages
                           if p.ecosystem == scenario.ecosystem and p.kind == "os"
                           and (p.source_name or p.name) == package.name})
        via = f"  (source of: {', '.join(binaries)})" if binaries and binaries != [package.name] else ""
        named = sum(1 for r in records if not r.get("withdrawn") for a in r.get("affected", [])
                    if a.get("package", {}).get("ecosystem") == scenario.ecosystem
                    and oracle.canonical(scenario.ecosystem.split(":")[0], a["package"].get("name", ""))
                    == oracle.canonical(scenario.ecosystem.split(":")[0], package.name))
        fixes = _fixes(records, scenario.ecosystem, package.name)
        latest = f", highest fix {fixes[-1]}" if fixes else ""
        lines.append(f"#   {package.name} {package.version}: named by {named} affected entries{latest}{via}")
    affected = [e for e in found if e.verdict == "affected"]
    unknown = [e for e in found if e.verdict == "unknown"]
    lines += [
        "#",
        f"# {len(affected)} affected, {len(unknown)} unknown.",
        "# advisory\tpackage\tversion\tverdict\twhy",
    ]
    for e in sorted(found, key=lambda e: (e.package.name, e.package.version, e.advisory)):
        name = oracle.canonical(scenario.ecosystem.split(":")[0], e.package.name)
        lines.append(f"{e.advisory}\t{name}\t{e.package.version}\t{e.verdict}\t{e.why}")
    return "\n".join(lines) + "\n"


def _fixes(records: list[dict], ecosystem: str, name: str) -> list[str]:
    """Every ``fixed`` version the records give for the package, in its ecosystem's order."""
    base = ecosystem.split(":")[0]
    cmp = oracle.COMPARE[base]
    found = {e["fixed"] for r in records if not r.get("withdrawn") for a in r.get("affected", [])
             if a.get("package", {}).get("ecosystem") == ecosystem
             and oracle.canonical(base, a["package"].get("name", "")) == oracle.canonical(base, name)
             for rng in a.get("ranges", []) if rng["type"] != "GIT" for e in rng["events"] if "fixed" in e}
    return sorted(found, key=functools.cmp_to_key(cmp))


def main(names: list[str]) -> None:
    for name in names or sorted(SCENARIOS):
        scenario = SCENARIOS[name]
        scenario.data_file.parent.mkdir(exist_ok=True)
        scenario.data_file.write_text(render(scenario))
        print(f"wrote {scenario.data_file}")


if __name__ == "__main__":
    main(sys.argv[1:])
