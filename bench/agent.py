"""Benchmark of ``svcctl run``: from a file event to the kernel commit, with 10k Services x 10
endpoints loaded.

    sudo .venv/bin/python bench/agent.py [--services 10000] [--endpoints 10] [--changes 100]

Two parts:

1. stages: what each incremental layer buys, in-process: the cost of each stage for everything
   (what a full recompile does on every change) against its cost for one changed endpoint;
2. agent: the real ``svcctl run`` in a throwaway network namespace on a directory with one file
   per Service (the Service and its EndpointSlice). One endpoint changes in one file, the time
   from the write to the agent's log line of the sync that committed it is taken (the log's
   millisecond clock), p50 and p99, with --min-sync-period 0 and with kube-proxy's default 1 s;
   CPU and RSS of the agent idle and under 100 changes a second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import cluster  # noqa: E402

SVCCTL = Path(sys.executable).parent / "svcctl"
NODE_ARGS = ["--node-name", "node-0", "--cluster-cidr", "10.128.0.0/9"]
TICK = os.sysconf("SC_CLK_TCK")


def write_tree(directory: Path, services: int, endpoints: int) -> None:
    for i in range(services):
        _write(directory / f"svc-{i}.json", i, endpoints, 0)


_VERSIONS = iter(range(1, 1 << 30))


def _write(path: Path, i: int, endpoints: int, version: int | None = None) -> None:
    """Service i and its slice; ``version`` changes the address of its last endpoint (None: a
    new one each time)."""
    version = next(_VERSIONS) if version is None else version
    es = cluster.endpoint_slice(i, endpoints)
    # A new address for each version (12,800 of them before one comes back).
    es["endpoints"][-1]["addresses"] = [f"10.{200 + version % 50}.{(version // 50) % 256}.{i & 255}"]
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [cluster.service(i), es]}))
    temporary.rename(path)  # atomic, as tools save


# ---- 1. stages ------------------------------------------------------------------------------


def stages(directory: Path, services: int, endpoints: int) -> None:
    from svcctl.agent.planner import Planner
    from svcctl.agent.source import DirectorySource
    from svcctl.agent.state import State
    from svcctl.nftables.decide import transaction
    from svcctl.nftables.live import LiveTable
    from svcctl.nftables.render import frame_name
    from svcctl.nftables.syncer import Syncer
    from svcctl.options import build_options
    from svcctl.plan import plan
    from svcctl.pipeline import read_inventory
    from svcctl.nftables.layout import layout
    from svcctl.resolve import resolve
    from svcctl.sources import read_manifests
    from svcctl.load import gc_paused

    options = build_options({"node-name": "node-0", "cluster-cidr": ["10.128.0.0/9"]})

    def timed(work):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        with gc_paused():
            out = work()
        return out, time.perf_counter() - start

    # Full recompile, stage by stage.
    inventory, t_parse = timed(lambda: read_inventory(read_manifests([str(directory)]), options))
    resolved, t_resolve = timed(lambda: resolve(inventory, options))
    rules_plan, t_plan = timed(lambda: plan(resolved, options))
    ruleset, t_layout = timed(lambda: layout(rules_plan, options.table))
    frames = {t.scope: frame_name(t) for t in ruleset.tables}
    live = [_live(t, frames[t.scope], LiveTable) for t in ruleset.tables]
    _, t_decide = timed(lambda: transaction(ruleset, live, frames))

    # The agent's layers, on the same files: load everything, then one endpoint changes.
    source = DirectorySource(directory)
    state, planner, syncer = State(options.node_port_range), Planner(options), Syncer(options, None)
    events = source.look_again()
    with gc_paused():
        changes = state.apply(events)
        for (v, name), ports in planner.update(state, changes).items():
            syncer.update(v, name, ports)
    syncer._committed = syncer._count()  # as after a first commit
    syncer._before.clear()
    _write(directory / "svc-5.json", 5, endpoints, 1)
    event, t_read = timed(lambda: source._look("svc-5.json", read=True))
    changes, t_state = timed(lambda: state.apply([event]))
    plans, t_planner = timed(lambda: planner.update(state, changes))
    _, t_syncer = timed(lambda: [syncer.update(v, name, ports) for (v, name), ports in plans.items()])
    ops, t_delta = timed(lambda: [syncer._delta(v, syncer._committed[v])[0] for v in (4, 6)])
    _write(directory / "svc-5.json", 5, endpoints, 0)

    rows = [
        ("read + parse + validate", t_parse, t_read + t_state, "layer 1: only the changed file"),
        ("allocate + resolve", t_resolve, None, "layer 2: only the Services it reaches"),
        ("plan (claims, port plans)", t_plan, t_planner, "layers 2+3 (resolve and plan together)"),
        ("nftables layout", t_layout, t_syncer, "layer 3: only the changed ports"),
        ("decide (vs last committed)", t_decide, t_delta, "layer 4: from memory, only what changed"),
    ]
    print(f"\n{services} Services x {endpoints} endpoints: one endpoint changes")
    print(f"{'stage':30} {'full recompile':>15} {'incremental':>12}  layer")
    for name, full, part, layer in rows:
        print(f"{name:30} {full * 1000:13.1f}ms {'' if part is None else f'{part * 1000:10.2f}ms':>12}  {layer}")
    total_full = t_parse + t_resolve + t_plan + t_layout + t_decide
    total_part = t_read + t_state + t_planner + t_syncer + t_delta
    print(f"{'total before the commit':30} {total_full * 1000:13.1f}ms {total_part * 1000:10.2f}ms  ({sum(len(o) for o in ops)} operations)")


def _live(table, marker, LiveTable):  # type: ignore[no-untyped-def]
    from svcctl.nftables.frame import FRAME_CHAINS

    lt = LiveTable(table.family, table.name, True)
    lt.chains = {c.name for c in table.endpoint_chains} | {e.name for e in table.external_chains} | {c.name for c in FRAME_CHAINS}
    lt.sets = {s.name for s in table.sets} | {marker}
    lt.elements = {s.name: {e.key: None if e.verdict is None else (e.verdict.kind.value, e.verdict.chain) for e in s.elements} for s in table.static_sets}
    return lt


# ---- 2. the agent ---------------------------------------------------------------------------


class Agent:
    def __init__(self, directory: Path, netns: str, min_sync: str):
        self.log_path = directory.parent / "agent.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, str(SVCCTL), "run", str(directory), *NODE_ARGS, "--min-sync-period", min_sync,
             "--log-format", "json", "--health-addr", "", "--metrics-addr", ""],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]

    def syncs(self) -> list[dict]:
        return [line for line in self.lines() if line["msg"] == "sync"]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def _unix(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def latencies(agent: Agent, directory: Path, endpoints: int, services: int, count: int, gap: float) -> list[float]:
    """Change one endpoint ``count`` times, ``gap`` apart; the write -> commit latencies."""
    out = []
    rng = random.Random(1)
    for _ in range(count):
        before = len(agent.syncs())
        i = rng.randrange(services)
        written = time.time()
        _write(directory / f"svc-{i}.json", i, endpoints)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            new = [s for s in agent.syncs()[before:] if s["events"] > 0]
            if new:
                out.append(_unix(new[0]["time"]) - written)
                break
            time.sleep(0.002)
        time.sleep(gap)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def agent_run(directory: Path, services: int, endpoints: int, changes: int) -> None:
    netns = f"svcctl-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        for min_sync in ("0", "1s"):
            agent = Agent(directory, netns, min_sync)
            start = time.monotonic()
            while not agent.syncs():
                time.sleep(0.05)
                assert agent.proc.poll() is None, agent.log_path.read_text()
            first = agent.syncs()[0]
            if min_sync == "0":
                print(f"\nagent: first sync (read {services} files, compile, commit) {time.monotonic() - start:.1f}s "
                      f"(sync itself {first['duration_ms'] / 1000:.1f}s), RSS {agent.rss_mb():.0f} MB")
                cpu0, t0 = agent.cpu_seconds(), time.monotonic()
                time.sleep(35)  # a resync (every 30 s) included
                idle = (agent.cpu_seconds() - cpu0) / (time.monotonic() - t0)
                print(f"idle: CPU {100 * idle:.1f}% of one core, RSS {agent.rss_mb():.0f} MB")
            before = len(agent.syncs())
            samples = latencies(agent, directory, endpoints, services, changes if min_sync == "0" else 30, 0.05 if min_sync == "0" else 0.3)
            updates = [s for s in agent.syncs()[before:] if s["kind"] == "partial"]
            verifies = [s for s in agent.syncs()[before:] if s["kind"] != "partial"]
            if updates:
                print(f"  partial syncs: duration p50 {statistics.median(s['duration_ms'] for s in updates):.0f} ms, of which kernel "
                      f"p50 {statistics.median(s['kernel_ms'] for s in updates):.0f} ms; full (verify) syncs: "
                      + ", ".join(f"{s['duration_ms']:.0f} ms (kernel {s['kernel_ms']:.0f})" for s in verifies))
            print(f"--min-sync-period {min_sync}: one endpoint change, write -> commit: p50 {1000 * percentile(samples, 0.5):.0f} ms, "
                  f"p99 {1000 * percentile(samples, 0.99):.0f} ms, max {1000 * max(samples):.0f} ms ({len(samples)} changes)")
            if min_sync == "0":
                churn(agent, directory, services, endpoints)
            agent.stop()
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False)


def churn(agent: Agent, directory: Path, services: int, endpoints: int, rate: int = 100, seconds: float = 10.0) -> None:
    """100 changes a second for 10 s: CPU, RSS, and how long each change waited."""
    rng = random.Random(2)
    writes: list[float] = []
    before = len(agent.syncs())
    cpu0, t0 = agent.cpu_seconds(), time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        i = rng.randrange(services)
        writes.append(time.time())
        _write(directory / f"svc-{i}.json", i, endpoints)
        n += 1
        time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    time.sleep(1.0)
    cpu = (agent.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    syncs = [s for s in agent.syncs()[before:] if s["events"] > 0]
    commits = sorted(_unix(s["time"]) for s in syncs)
    waits = [next((c for c in commits if c >= w), commits[-1]) - w for w in writes]
    print(f"{rate} changes/s for {seconds:.0f}s: CPU {100 * cpu:.0f}% of one core, RSS {agent.rss_mb():.0f} MB, "
          f"{len(syncs)} syncs ({sum(s['events'] for s in syncs) / max(1, len(syncs)):.1f} changes each), "
          f"write -> commit p50 {1000 * statistics.median(waits):.0f} ms, p99 {1000 * percentile(waits, 0.99):.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--skip-agent", action="store_true", help="only the in-process stages (no root needed)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "manifests"
        directory.mkdir()
        write_tree(directory, args.services, args.endpoints)
        stages(directory, args.services, args.endpoints)
        if not args.skip_agent:
            agent_run(directory, args.services, args.endpoints, args.changes)


if __name__ == "__main__":
    main()
