"""Benchmark: compile by stage, the `svcctl compile` CLI, and the kernel load of its output (issue: Compiler).

    .venv/bin/python bench/compile_load.py [--sizes 1000 10000] [--endpoints 10] [--repeat 3]

For each synthetic cluster (bench/cluster.py: a kubectl-style JSON List of Services and their
EndpointSlices, written under bench/out/ once):

- in this process, the time of each stage (load, validate, resolve, plan, render), best of
  --repeat, with the garbage collector handled as svcctl.pipeline does (paused through the build,
  the survivors frozen afterwards: svcctl.load.gc_paused);
- the wall time (best of 3) and peak memory (max RSS) of `svcctl compile FILE > out.nft` as a
  user runs it, interpreter start-up included;
- the kernel load time of out.nft into an empty network namespace (`unshare -n nft -f`), best of 3.
  Each `unshare -n` namespace disappears with its process. Needs root and nft; skipped otherwise.

Targets at 10k Services x 10 endpoints: compile <= 2 s, kernel load <= 3 s, memory < 1 GB.
A script, not a test.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import cluster  # noqa: E402

from svcctl.load import gc_paused  # noqa: E402
from svcctl.sources import load  # noqa: E402
from svcctl.options import build_options  # noqa: E402
from svcctl.nftables.layout import layout  # noqa: E402
from svcctl.nftables.render import render_ruleset  # noqa: E402
from svcctl.plan import plan  # noqa: E402
from svcctl.resolve import resolve  # noqa: E402
from svcctl.validate import validate  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
SVCCTL = os.path.join(os.path.dirname(sys.executable), "svcctl")
NODE_OPTIONS = ["--node-name", "node-0", "--cluster-cidr", "10.128.0.0/9"]  # cluster.py's pod addresses
STAGES = ("load", "validate", "resolve", "plan", "layout", "render")


def cluster_file(services: int, endpoints: int) -> str:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"cluster-{services}x{endpoints}.json")
    if not os.path.exists(path):
        cluster.write(path, services, endpoints, "json")
    return path


def stage_times(path: str, services: int) -> dict[str, float]:
    """One in-process compile, stage by stage, as svcctl.pipeline.compile_rules runs it."""
    options = build_options({"node-name": NODE_OPTIONS[1], "cluster-cidr": [NODE_OPTIONS[3]]})
    gc.collect()
    t = [time.perf_counter()]
    with gc_paused():
        objects, problems = load([path])
        t.append(time.perf_counter())
        inventory = validate(objects, options.node_port_range)
        t.append(time.perf_counter())
        resolved = resolve(inventory, options)
        t.append(time.perf_counter())
        rules_plan = plan(resolved, options)
        t.append(time.perf_counter())
        ruleset = layout(rules_plan, options.table)
        t.append(time.perf_counter())
        text = render_ruleset(ruleset)
        t.append(time.perf_counter())
    assert not problems and len(resolved) == services and text
    del objects, inventory, resolved, rules_plan, ruleset, text
    gc.unfreeze()  # let the next round start from a clean heap
    gc.collect()
    return {stage: t[i + 1] - t[i] for i, stage in enumerate(STAGES)}


def cli_run(path: str, out: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `svcctl compile`, output to a file."""
    command = [SVCCTL, "compile", path, *NODE_OPTIONS]
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    with open(out, "w") as f:
        if timer:
            t0 = time.perf_counter()
            done = subprocess.run([timer, "-v", *command], stdout=f, stderr=subprocess.PIPE, text=True)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"svcctl compile failed:\n{done.stderr}")
            rss_kb = next(int(line.split(":")[1]) for line in done.stderr.splitlines() if "Maximum resident set size" in line)
            return wall, rss_kb / 1024
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        done = subprocess.run(command, stdout=f, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"svcctl compile failed:\n{done.stderr}")
        # ru_maxrss of children is the largest child so far (KB on Linux): exact as long as this
        # is the biggest child this process has run.
        return wall, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def kernel_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    if not (shutil.which("nft") and shutil.which("unshare")):
        return "nft or unshare missing"
    return None


def kernel_load(out: str, repeat: int = 3) -> float:
    """Best wall time of loading the file into a fresh, empty network namespace."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        done = subprocess.run(["unshare", "-n", "nft", "-f", out], capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"nft refused {out}:\n{done.stderr[:2000]}")
        best = min(best, elapsed)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="in-process compiles per size (best is shown)")
    args = ap.parse_args()
    skip = kernel_skip_reason()

    header = ["services", *STAGES, "compile", "cli wall", "cli max RSS", "nft -f", "ruleset"]
    rows = []
    for n in args.sizes:
        path = cluster_file(n, args.endpoints)
        best = {s: float("inf") for s in STAGES}
        for _ in range(args.repeat):
            for stage, t in stage_times(path, n).items():
                best[stage] = min(best[stage], t)
        out = os.path.join(OUT, f"cluster-{n}x{args.endpoints}.nft")
        runs = [cli_run(path, out) for _ in range(3)]
        wall, rss_mb = min(w for w, _ in runs), max(m for _, m in runs)
        load_s = kernel_load(out) if skip is None else None
        size = os.path.getsize(out) / 1e6
        rows.append([
            f"{n} x {args.endpoints}",
            *(f"{best[s]:.2f} s" for s in STAGES),
            f"{sum(best.values()):.2f} s",
            f"{wall:.2f} s",
            f"{rss_mb:.0f} MB",
            f"{load_s:.2f} s" if load_s is not None else f"skipped ({skip})",
            f"{size:.1f} MB",
        ])

    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    print(f"\nstages: best of {args.repeat} in one process; cli: best of 3 runs of `svcctl compile` "
          f"({' '.join(NODE_OPTIONS)}); nft -f: best of 3 into an empty netns. "
          "Targets at 10k x 10: compile <= 2 s, nft -f <= 3 s, memory < 1 GB.")


if __name__ == "__main__":
    main()
