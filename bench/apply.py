"""Benchmark: kernel time of a full apply against an incremental one (one Service changed).

    sudo .venv/bin/python bench/apply.py [--services 1000 10000] [--endpoints 10]

Everything runs in a throwaway network namespace. For each size: the commit of the full ruleset
into an empty namespace; then, on that live table, one Service loses an endpoint and the
incremental transaction svcctl sends for it is committed (as svcctl sends it: the new chains in
a transaction of their own first, svcctl.nftables.transaction.stages); then the unchanged manifest, which
must send nothing. Reading the live state is timed apart from the commit."""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import cluster  # noqa: E402

from svcctl.kernel import in_throwaway_netns  # noqa: E402
from svcctl.nftables.decide import transaction  # noqa: E402
from svcctl.nftables.live import read_live  # noqa: E402
from svcctl.nftables.nft import Nft  # noqa: E402
from svcctl.nftables.render import frame_name  # noqa: E402
from svcctl.nftables.transaction import stages  # noqa: E402
from svcctl.nftables.transport import send  # noqa: E402
from svcctl.options import build_options  # noqa: E402
from svcctl.pipeline import compile_rules  # noqa: E402
from svcctl.sources import read_manifests  # noqa: E402


def _compile(data: dict, options):  # type: ignore[no-untyped-def]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        import json

        json.dump(data, f)
        f.flush()
        return compile_rules(read_manifests([f.name]), options)[2].rules


def measure(services: int, endpoints: int) -> dict[str, float]:
    options = build_options({"node-name": "node-0", "cluster-cidr": ["10.128.0.0/9"]})
    data = cluster.cluster(services, endpoints)
    changed = copy.deepcopy(data)
    for item in changed["items"]:
        if item["kind"] == "EndpointSlice" and item["metadata"]["name"] == "svc-5-abcde":
            item["endpoints"] = item["endpoints"][:-1]
    plans = [_compile(data, options), _compile(changed, options)]

    def work() -> dict[str, float]:
        nft = Nft()
        out: dict[str, float] = {}
        for label, ruleset in zip(("full", "one service changed"), plans):
            frames = {t.scope: frame_name(t) for t in ruleset.tables}
            t0 = time.perf_counter()
            tx = transaction(ruleset, read_live(nft, ruleset, frames), frames)
            t1 = time.perf_counter()
            send(nft, tx.operations)
            t2 = time.perf_counter()
            out[f"{label}: read live + decide"] = t1 - t0
            out[f"{label}: commit ({tx.kind}, {len(stages(tx.operations))} transaction(s))"] = t2 - t1
        ruleset = plans[1]
        frames = {t.scope: frame_name(t) for t in ruleset.tables}
        tx = transaction(ruleset, read_live(nft, ruleset, frames), frames)
        assert tx.kind == "unchanged" and not tx, tx.summary
        return out

    return in_throwaway_netns(work)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--endpoints", type=int, default=10)
    args = ap.parse_args()
    for n in args.services:
        r = measure(n, args.endpoints)
        full = next(v for k, v in r.items() if k.startswith("full: commit"))
        incr = next(v for k, v in r.items() if k.startswith("one service changed: commit"))
        print(f"{n} services x {args.endpoints} endpoints: " + "  ".join(f"{k} {v:.3f}s" for k, v in r.items())
              + f"  => incremental/full commit = {100 * incr / full:.1f}%")


if __name__ == "__main__":
    main()
