"""Benchmark: load + validate + resolve for a synthetic cluster, the fast paths against the exact
ones (svcctl.fastload against svcctl.load), side by side in one run.

    .venv/bin/python bench/load_validate_resolve.py [--services 10000] [--endpoints 10] [--repeat 3]

Generates the cluster as kubectl-style JSON and YAML under bench/out/, then times each stage in
this process (best of --repeat runs; the exact YAML path once: it takes ~14 s at 10k), with the
garbage collector handled as svcctl.pipeline does. CPU seconds of this process (time.process_time)
are shown next to wall seconds: the machine is shared, and CPU time is the steadier measure."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import cluster  # noqa: E402

from svcctl import load as loading  # noqa: E402
from svcctl.load import gc_paused  # noqa: E402
from svcctl.options import build_options  # noqa: E402
from svcctl.resolve import resolve  # noqa: E402
from svcctl.sources import load  # noqa: E402
from svcctl.validate import validate  # noqa: E402

STAGES = ("load", "validate", "resolve")


def run(path: str, services: int) -> dict[str, tuple[float, float]]:
    """(wall, cpu) seconds of each stage, and of the three together."""
    options = build_options({"node-name": "node-0"})
    gc.collect()
    marks = [(time.perf_counter(), time.process_time())]
    with gc_paused():  # as svcctl.pipeline runs the stages
        objects, problems = load([path])
        marks.append((time.perf_counter(), time.process_time()))
        inventory = validate(objects, options.node_port_range)
        marks.append((time.perf_counter(), time.process_time()))
        services_found = resolve(inventory, options)
        marks.append((time.perf_counter(), time.process_time()))
    assert not problems and len(services_found) == services
    del objects, inventory, services_found
    gc.unfreeze()
    gc.collect()
    times = {stage: (marks[i + 1][0] - marks[i][0], marks[i + 1][1] - marks[i][1]) for i, stage in enumerate(STAGES)}
    times["total"] = (marks[-1][0] - marks[0][0], marks[-1][1] - marks[0][1])
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out = os.path.join(os.path.dirname(__file__), "out")
    os.makedirs(out, exist_ok=True)
    fast_from = loading.FAST_PATH_BYTES
    for fmt in ("json", "yaml"):
        path = os.path.join(out, f"cluster-{args.services}x{args.endpoints}.{fmt}")
        if not os.path.exists(path):
            cluster.write(path, args.services, args.endpoints, fmt)
        size = os.path.getsize(path) / 1e6
        for name, threshold in (("exact", 1 << 62), ("fast", fast_from)):
            loading.FAST_PATH_BYTES = threshold
            best: dict[str, tuple[float, float]] = {}
            # Alternating would not help here: one path's runs follow each other; best of each.
            for _ in range(1 if (fmt, name) == ("yaml", "exact") else args.repeat):
                for stage, (wall, cpu) in run(path, args.services).items():
                    if stage not in best or wall < best[stage][0]:
                        best[stage] = (wall, cpu)
            print(f"{fmt:4} {name:5} {args.services} services x {args.endpoints} endpoints ({size:.0f} MB): "
                  + "  ".join(f"{k} {w:.2f}s ({c:.2f} cpu)" for k, (w, c) in best.items()))
    loading.FAST_PATH_BYTES = fast_from


if __name__ == "__main__":
    main()
