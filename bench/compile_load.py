"""Benchmark: compile by stage, the `svcctl compile` CLI, YAML validation, and the kernel load of
the ruleset (issues: Compiler; Speed at 10k Services), side by side in one run.

    .venv/bin/python bench/compile_load.py [--sizes 1000 10000] [--big 50000] [--endpoints 10] [--repeat 3]

For each synthetic cluster (bench/cluster.py: a kubectl-style List of Services and their
EndpointSlices, written under bench/out/ once, as JSON and as YAML):

- in this process, the time of each stage (load, validate, resolve, plan, layout, render), best
  of --repeat, with the garbage collector handled as svcctl.pipeline does (paused through the
  build, the survivors frozen afterwards: svcctl.load.gc_paused);
- the wall time, CPU time (user + system) and peak memory (max RSS) of `svcctl compile FILE.json
  > out.nft` and of `svcctl validate FILE.yaml` as a user runs them, interpreter start-up
  included: best of --repeat, the runs of the two commands alternating;
- the kernel load time of out.nft into an empty network namespace (`unshare -n nft -f`), best of
  --repeat. Each `unshare -n` namespace disappears with its process. Needs root and nft; skipped
  otherwise.

--big adds one cluster measured once each way (50,000 Services: it must compile on this machine).
The machine is shared (2 cores): CPU time is the steadier measure when wall times wander.

Targets at 10k x 10: compile <= 1.3 s wall, YAML validate <= 3 s, compile max RSS <= 300 MB,
kernel load <= 2.5 s. A script, not a test.
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
from typing import NamedTuple

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
# The console script's entry point as the checkout on PYTHONPATH has it (`--against` an older
# one, whose script may have another): what `svcctl` runs there. -P: not the current directory first.
SVCCTL = [sys.executable, "-P", "-c", "import sys; from svcctl import cli; sys.argv[0] = 'svcctl'; getattr(cli, 'entry', cli.main)()"]
NODE_OPTIONS = ["--node-name", "node-0", "--cluster-cidr", "10.128.0.0/9"]  # cluster.py's pod addresses
STAGES = ("load", "validate", "resolve", "plan", "layout", "render")


def cluster_file(services: int, endpoints: int, fmt: str = "json") -> str:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"cluster-{services}x{endpoints}.{fmt}")
    if not os.path.exists(path):
        cluster.write(path, services, endpoints, fmt)
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


class Run(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + system seconds
    rss: float  # MB


def cli_run(command: list[str], out: str, code: str | None = None) -> Run:
    """Wall and CPU seconds and peak RSS of one svcctl command, its output to a file; with
    ``code``, svcctl as found in that checkout (PYTHONPATH) instead of this one."""
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    env = {**os.environ, "PYTHONPATH": code} if code else None
    with open(out, "w") as f:
        if timer:
            t0 = time.perf_counter()
            done = subprocess.run([timer, "-f", "%U %S %M", *command], stdout=f, stderr=subprocess.PIPE, text=True, env=env)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"svcctl {command[len(SVCCTL)]} failed:\n{done.stderr}")
            user, system, rss_kb = done.stderr.split()[-3:]
            return Run(wall, float(user) + float(system), int(rss_kb) / 1024)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(command, stdout=f, stderr=subprocess.PIPE, text=True, env=env)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"svcctl {command[len(SVCCTL)]} failed:\n{done.stderr}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # ru_maxrss of children is the largest child so far (KB on Linux): exact as long as this
        # is the biggest child this process has run.
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return Run(wall, cpu, max(before.ru_maxrss, after.ru_maxrss) / 1024)


def best_runs(commands: list[tuple[list[str], str, str | None]], repeat: int) -> list[Run]:
    """Each command (argv, output file, checkout or None) run ``repeat`` times, the commands
    alternating: the best wall time of each (with its CPU time), and the largest peak memory."""
    runs: list[list[Run]] = [[] for _ in commands]
    for _ in range(repeat):
        for i, (command, out, code) in enumerate(commands):
            runs[i].append(cli_run(command, out, code))
    best = []
    for found in runs:
        fastest = min(found, key=lambda r: r.wall)
        best.append(Run(fastest.wall, fastest.cpu, max(r.rss for r in found)))
    return best


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
    ap.add_argument("--big", type=int, default=50000, help="one more size, measured once (0: none)")
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (the best is shown)")
    ap.add_argument("--against", metavar="CHECKOUT", help="also run the commands with svcctl from this checkout (e.g. main's), alternating with this one's")
    args = ap.parse_args()
    skip = kernel_skip_reason()

    header = ["services", *STAGES, "compile", "cli wall", "cli cpu", "cli max RSS", "yaml validate", "yaml cpu", "yaml RSS", "nft -f", "ruleset"]
    rows = []
    for n in [*args.sizes, *([args.big] if args.big else [])]:
        repeat = 1 if n == args.big and n not in args.sizes else args.repeat
        path, yaml_path = cluster_file(n, args.endpoints), cluster_file(n, args.endpoints, "yaml")
        best = {s: float("inf") for s in STAGES}
        for _ in range(repeat):
            for stage, t in stage_times(path, n).items():
                best[stage] = min(best[stage], t)
        out = os.path.join(OUT, f"cluster-{n}x{args.endpoints}.nft")
        checkouts = [None, *([args.against] if args.against else [])]
        commands = [
            (command, target, code)
            for code in checkouts
            for command, target in (([*SVCCTL, "compile", path, *NODE_OPTIONS], out if code is None else os.devnull), ([*SVCCTL, "validate", yaml_path], os.devnull))
        ]
        found = best_runs(commands, repeat)
        load_s = kernel_load(out, repeat) if skip is None else None
        size = os.path.getsize(out) / 1e6
        for k, code in enumerate(checkouts):
            compiled, validated = found[2 * k], found[2 * k + 1]
            rows.append([
                f"{n} x {args.endpoints}" + (f" ({code})" if code else ""),
                *((f"{best[s]:.2f} s" for s in STAGES) if code is None else ["-"] * len(STAGES)),
                f"{sum(best.values()):.2f} s" if code is None else "-",
                f"{compiled.wall:.2f} s",
                f"{compiled.cpu:.2f} s",
                f"{compiled.rss:.0f} MB",
                f"{validated.wall:.2f} s",
                f"{validated.cpu:.2f} s",
                f"{validated.rss:.0f} MB",
                (f"{load_s:.2f} s" if load_s is not None else f"skipped ({skip})") if code is None else "-",
                f"{size:.1f} MB" if code is None else "-",
            ])

    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    print(f"\nstages: best of {args.repeat} in one process; cli: `svcctl compile FILE.json` ({' '.join(NODE_OPTIONS)}) and "
          f"`svcctl validate FILE.yaml`, alternating, best wall of {args.repeat} (with that run's CPU time), largest RSS; "
          f"nft -f: best of {args.repeat} into an empty netns; {args.big} once each. "
          "Targets at 10k x 10: compile <= 1.3 s, YAML validate <= 3 s, compile RSS <= 300 MB, nft -f <= 2.5 s.")


if __name__ == "__main__":
    main()
