"""Benchmark of ``svcctl run --kubeconfig``'s source (svcctl.agent.kube) against the fake API server
of tests/fake_apiserver.py, in a process of its own (HTTPS, bearer token), with N Services and
their EndpointSlices of E endpoints:

    .venv/bin/python bench/kube_source.py [--services 10000] [--endpoints 10] [--changes 50]

- start: from the first request to Synced (lists of every resource, one event per object), then
  the agent's state (parse and validate every object) and a full plan of it, in-process;
- one change: an EndpointSlice modified on the server, to its event out of the source (the watch
  stream, JSON, the object's text), p50 and max. The kernel is not involved (bench/agent.py
  measures a change from the source to the commit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import cluster  # noqa: E402
from fake_apiserver import write_kubeconfig  # noqa: E402

from svcctl.agent.kube import KubeSource, connect  # noqa: E402
from svcctl.agent.reconcile import Syncing  # noqa: E402
from svcctl.agent.source import Event, Synced  # noqa: E402
from svcctl.nftables.syncer import Syncer  # noqa: E402
from svcctl.options import build_options  # noqa: E402

SERVER = Path(__file__).parent.parent / "tests" / "fake_apiserver.py"
OPTIONS = build_options({"node-name": "node-0", "cluster-cidr": ["10.128.0.0/9"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    objects = cluster.cluster(args.services, args.endpoints)["items"]
    with tempfile.TemporaryDirectory() as scratch:
        server = subprocess.Popen([sys.executable, str(SERVER), "--certs", scratch, "--token", "bench"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            started = json.loads(server.stdout.readline())  # type: ignore[union-attr]

            def command(op: str, **fields: object) -> None:
                server.stdin.write(json.dumps({"op": op, **fields}) + "\n")  # type: ignore[union-attr]
                server.stdin.flush()  # type: ignore[union-attr]
                server.stdout.readline()  # type: ignore[union-attr]

            command("apply", events=[{"type": "ADDED", "object": o} for o in objects])
            kubeconfig = write_kubeconfig(Path(scratch) / "kubeconfig", f"https://127.0.0.1:{started['port']}", Path(started["ca"]), token="bench")
            slices = [o for o in objects if o["kind"] == "EndpointSlice"]
            asyncio.run(measure(str(kubeconfig), slices, args, command))
        finally:
            server.stdin.close()  # type: ignore[union-attr]
            server.wait()


async def measure(kubeconfig: str, slices: list[dict], args: argparse.Namespace, command) -> None:  # type: ignore[no-untyped-def, type-arg]
    source = KubeSource(connect(kubeconfig, False), "node-0")
    events = source.events().__aiter__()
    begin = time.perf_counter()
    listed: list[Event] = []
    while not isinstance(event := await events.__anext__(), Synced):
        listed.append(event)
    synced = time.perf_counter()
    syncing = Syncing(OPTIONS, Syncer(OPTIONS, None))
    syncing.state.apply(listed)
    accepted = time.perf_counter()
    syncing._reconfigure()
    planned = time.perf_counter()
    print(f"{args.services} Services, EndpointSlices of {args.endpoints} endpoints: listed to Synced {synced - begin:.2f} s "
          f"({len(listed)} objects), state {accepted - synced:.2f} s, full plan {planned - accepted:.2f} s")
    latencies = []
    for i in range(args.changes):
        changed = json.loads(json.dumps(slices[i]))
        changed["endpoints"] = changed["endpoints"][: 1 + i % len(changed["endpoints"])]
        sent = time.perf_counter()
        await asyncio.to_thread(command, "apply", events=[{"type": "MODIFIED", "object": changed}])
        await events.__anext__()
        latencies.append(time.perf_counter() - sent)
    print(f"one EndpointSlice change, server to source event: p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms ({args.changes} changes; includes the control command's round trip)")
    source.stop()


if __name__ == "__main__":
    main()
