"""Benchmark: load + validate + resolve for a synthetic cluster (issue: foundation).

    .venv/bin/python bench/load_validate_resolve.py [--services 10000] [--endpoints 10]

Generates the cluster as kubectl-style JSON and YAML under bench/out/, then times each stage
in this process (best of --repeat runs)."""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import cluster  # noqa: E402

from svcctl.load import gc_paused  # noqa: E402
from svcctl.sources import load  # noqa: E402
from svcctl.options import build_options  # noqa: E402
from svcctl.resolve import resolve  # noqa: E402
from svcctl.validate import validate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out = os.path.join(os.path.dirname(__file__), "out")
    os.makedirs(out, exist_ok=True)
    options = build_options({"node-name": "node-0"})
    for fmt in ("json", "yaml"):
        path = os.path.join(out, f"cluster-{args.services}x{args.endpoints}.{fmt}")
        if not os.path.exists(path):
            cluster.write(path, args.services, args.endpoints, fmt)
        best: dict[str, float] = {}
        for _ in range(args.repeat if fmt == "json" else 1):
            with gc_paused():  # as svcctl.pipeline runs the stages
                t0 = time.perf_counter()
                objects, problems = load([path])
                t1 = time.perf_counter()
                inventory = validate(objects, options.node_port_range)
                t2 = time.perf_counter()
                services = resolve(inventory, options)
                t3 = time.perf_counter()
            assert not problems and len(services) == args.services
            for stage, t in (("load", t1 - t0), ("validate", t2 - t1), ("resolve", t3 - t2), ("total", t3 - t0)):
                best[stage] = min(best.get(stage, t), t)
        size = os.path.getsize(path) / 1e6
        print(f"{fmt:4} {args.services} services x {args.endpoints} endpoints ({size:.0f} MB): "
              + "  ".join(f"{k} {v:.2f}s" for k, v in best.items()))


if __name__ == "__main__":
    main()
