"""Benchmark: svcctl's compile + kernel load against the kernel load alone of kube-proxy's
nftables layout (v1.36+, bench/kube_proxy_layout.py) for the same cluster, in one run.

    sudo .venv/bin/python bench/versus_kube_proxy.py [--sizes 1000 10000] [--endpoints 10]

For each synthetic cluster (bench/cluster.py, a kubectl-style JSON List): the wall time of
`svcctl compile` as a user runs it (interpreter start-up included), the load of its output into
an empty network namespace (`unshare -n nft -f`), the load of kube-proxy's layout of the same
plan, and the ratio (compile + load) / (kube-proxy's load). Best of --repeat each. Needs root.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import kube_proxy_layout  # noqa: E402

from svcctl.options import build_options  # noqa: E402
from svcctl.pipeline import plan_rules  # noqa: E402
from svcctl.sources import read_manifests  # noqa: E402

OUT = os.path.join(HERE, "out")
SVCCTL = os.path.join(os.path.dirname(sys.executable), "svcctl")
NODE = ["--node-name", "node-0", "--cluster-cidr", "10.128.0.0/9"]


def best(argv: list[str], repeat: int, stdout: str | None = None) -> float:
    times = []
    for _ in range(repeat):
        with open(stdout or os.devnull, "w") as out:
            t0 = time.perf_counter()
            done = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, text=True)
            times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:3])} failed:\n{done.stderr[:2000]}")
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    print(f"{'cluster':>14} {'compile':>8} {'load':>8} {'kube-proxy load':>16} {'ratio':>6}")
    for n in args.sizes:
        manifest = os.path.join(OUT, f"cluster-{n}x{args.endpoints}.json")
        if not os.path.exists(manifest):
            cluster.write(manifest, n, args.endpoints, "json")
        ours, theirs = os.path.join(OUT, f"svcctl-{n}.nft"), os.path.join(OUT, f"kube-proxy-{n}.nft")
        compile_s = best([SVCCTL, "compile", manifest, *NODE], args.repeat, stdout=ours)
        plan = plan_rules(read_manifests([manifest]), build_options({"node-name": NODE[1], "cluster-cidr": [NODE[3]]}))[1]
        with open(theirs, "w") as f:
            f.write(kube_proxy_layout.render(plan))
        load_s = best(["unshare", "-n", "nft", "-f", ours], args.repeat)
        theirs_s = best(["unshare", "-n", "nft", "-f", theirs], args.repeat)
        print(f"{f'{n} x {args.endpoints}':>14} {compile_s:>7.2f}s {load_s:>7.2f}s {theirs_s:>15.2f}s {(compile_s + load_s) / theirs_s:>6.2f}")


if __name__ == "__main__":
    main()
