"""Ingest + baseline check of generated Falco and Tetragon events over many containers.

    .venv/bin/python bench/runtime.py [--events 1000000] [--containers 5000]

Lines are generated up front (not timed) in the sensors' JSON shapes, half Falco and half
Tetragon; then each line is parsed (``read_lines``) and checked against its container's baseline
(``BaselineEngine.observe``), on one core. Each container learns for its first 40 events, then is
frozen; about 1 event in 500 afterwards is new behaviour (a deviation or a repeat of one).
Peak RSS is the whole process, generated lines included.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time

from keelwatch.runtime import ReadStats, read_lines
from keelwatch.runtime.baseline import BaselineEngine, BaselinePolicy
from keelwatch.runtime.falco import FalcoSource
from keelwatch.runtime.tetragon import TetragonSource

EXES = ["/usr/bin/python3.11", "/usr/local/bin/gunicorn", "/bin/sh", "/usr/bin/curl", "/usr/bin/java", "/app/server"]


def falco_line(rng: random.Random, c: int, novel: bool) -> str:
    kind = rng.choice(("execve", "connect", "openat"))
    fields: dict[str, object] = {"container.id": f"{c:012x}", "container.image.digest": f"sha256:{c % 97:064x}",
              "container.image.repository": f"registry.local/app{c % 97}", "k8s.ns.name": f"ns{c % 50}",
              "k8s.pod.name": f"app{c}-7d4b9c8f6-x2kqz", "container.name": "app", "evt.type": kind,
              "proc.exepath": f"/opt/new{rng.randrange(1000)}" if novel and kind == "execve" else rng.choice(EXES),
              "proc.pname": "bash", "proc.cmdline": "python3 app.py"}
    if kind == "connect":
        fields.update({"fd.sip": f"203.0.{rng.randrange(256) if novel else 113}.{rng.randrange(256)}",
                       "fd.sport": 443, "fd.l4proto": "tcp"})
    elif kind == "openat":
        fields.update({"fd.name": f"/var/lib/app/{'x' if novel else 'data'}/{rng.randrange(100)}",
                       "evt.is_open_write": True})
    return json.dumps({"hostname": "node", "output": "…", "priority": "Notice", "rule": "r", "source": "syscall",
                       "tags": [], "time": "2024-05-02T10:14:05.123456789Z", "output_fields": fields})


def tetragon_line(rng: random.Random, c: int, novel: bool) -> str:
    process = {"exec_id": "x", "pid": 1000 + c, "binary": f"/opt/new{rng.randrange(1000)}" if novel else
               rng.choice(EXES), "arguments": "app.py",
               "pod": {"namespace": f"ns{c % 50}", "name": f"app{c}-7d4b9c8f6-x2kqz", "workload": f"app{c}",
                       "container": {"id": f"containerd://{c:064x}", "name": "app",
                                     "image": {"id": f"registry.local/app{c % 97}@sha256:{c % 97:064x}",
                                               "name": f"registry.local/app{c % 97}:1"}}}}
    if rng.random() < 0.5:
        return json.dumps({"process_exec": {"process": process, "parent": {"binary": "/bin/bash"}},
                           "node_name": "node", "time": "2024-05-02T10:14:05.123456789Z"})
    sock = {"family": "AF_INET", "type": "SOCK_STREAM", "protocol": "IPPROTO_TCP", "saddr": "10.0.0.1",
            "daddr": f"10.96.{rng.randrange(256) if novel else 0}.{rng.randrange(256)}", "sport": 40000,
            "dport": 5432}
    return json.dumps({"process_kprobe": {"process": process, "parent": {"binary": "/bin/bash"},
                                          "function_name": "tcp_connect", "args": [{"sock_arg": sock}],
                                          "action": "KPROBE_ACTION_POST", "policy_name": "net"},
                       "node_name": "node", "time": "2024-05-02T10:14:05.123456789Z"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--containers", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    per_container = [0] * args.containers
    falco_lines: list[str] = []
    tetragon_lines: list[str] = []
    start = time.perf_counter()
    for i in range(args.events):
        c = rng.randrange(args.containers)
        per_container[c] += 1
        novel = per_container[c] > 80 and rng.random() < 0.002
        (falco_lines if i % 2 == 0 else tetragon_lines).append(
            (falco_line if i % 2 == 0 else tetragon_line)(rng, c, novel))
    generated = time.perf_counter() - start

    engine = BaselineEngine(BaselinePolicy(learning_period=None, learning_events=40))
    deviations = 0
    start = time.perf_counter()
    for source, lines in ((FalcoSource(), falco_lines), (TetragonSource(), tetragon_lines)):
        stats = ReadStats()
        for event in read_lines(source, lines, stats):
            deviations += len(engine.observe(event))
        assert stats.skipped == 0, stats.problems[:3]
    elapsed = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    open_count = len(engine.open)
    repeats = sum(d.count for d in engine.open.values()) - open_count
    print(f"{args.events:,} events over {args.containers:,} containers ({len(engine.baselines):,} baselines): "
          f"{elapsed:.1f} s, {args.events / elapsed:,.0f} events/s parse + check "
          f"(generation {generated:.1f} s, not counted)")
    print(f"{deviations:,} deviations opened, {repeats:,} repeats counted; peak RSS {rss_mb:,.0f} MB")


if __name__ == "__main__":
    main()
