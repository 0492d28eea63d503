"""Benchmark: what svcctl's rules cost a new connection, measured with real packets at C speed.

    sudo .venv/bin/python bench/latency.py [--connections 4000] [--rounds 5]

A lab of network namespaces (tests/e2e/lab.py): a client, the node, one backend namespace that
answers on every address of 10.245.0.0/16 (``ip route add local``: one listener, as many
endpoints as needed). bench/connect.c, compiled here, opens N TCP connections one after the
other through the node and prints the median time of connect() (SYN -> SYN-ACK); each
connection is a new conntrack entry and a new load-balancing decision.

Two tables, each variant measured in interleaved rounds (the machine is shared: the median of
the rounds' medians is printed):

1. Big Services: one Service of 1 to 5,000 endpoints, with svcctl's layout (a cascade up to 32
   endpoints, one numgen map rule above: svcctl.nftables.objects.CASCADE_MAX) and with the
   cascade alone, as before; each relative to 10 endpoints.
2. The fixed cost: a direct connection to the backend (no rules, no conntrack), the same with
   conntrack loaded (one table matching ct state), a minimal dispatch (one verdict map, one
   cascade chain: what kube-proxy's layout and svcctl's share), and svcctl's whole ruleset with
   1, 1,000 and 10,000 Services (the probed Service has 10 endpoints).

Needs root, iproute2, nft and gcc. A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, HERE)
from lab import Lab  # noqa: E402

import cluster  # noqa: E402

import svcctl.nftables.objects as objects  # noqa: E402
from svcctl.load import Inputs, Source  # noqa: E402
from svcctl.options import build_options  # noqa: E402
from svcctl.pipeline import compile_rules  # noqa: E402

VIP, PORT = "10.96.0.10", 80
OPTIONS = build_options({"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16", "192.168.50.0/24"]})  # clients unmasqueraded


def endpoint(i: int) -> str:
    return f"10.245.{i // 250}.{i % 250 + 1}"


def one_service(n: int) -> str:
    """One ClusterIP Service with n endpoints (EndpointSlices of at most 1,000)."""
    items: list[dict] = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                          "spec": {"clusterIP": VIP, "ports": [{"port": PORT, "targetPort": 8080}]}}]
    for k in range(0, n, 1000):
        items.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"web-{k}", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"port": 8080}],
            "endpoints": [{"addresses": [endpoint(i)], "nodeName": "node-2"} for i in range(k, min(n, k + 1000))],
        })
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def many_services(count: int) -> str:
    """``count`` Services of 10 endpoints (bench/cluster.py), the first one at VIP with the lab's
    backend addresses."""
    data = cluster.cluster(count, 10)
    first = next(i for i in data["items"] if i["kind"] == "Service")
    first["spec"]["clusterIP"] = VIP
    first["spec"]["clusterIPs"] = [VIP]
    first["spec"]["ports"] = [{"name": "http", "port": PORT, "protocol": "TCP", "targetPort": 8080}]
    name = first["metadata"]["name"]
    for item in data["items"]:
        if item["kind"] == "EndpointSlice" and item["metadata"]["labels"]["kubernetes.io/service-name"] == name:
            item["ports"] = [{"name": "http", "port": 8080, "protocol": "TCP"}]
            for i, ep in enumerate(item["endpoints"]):
                ep["addresses"] = [endpoint(i)]
    return json.dumps(data)


def compiled(text: str, cascade_only: bool = False) -> str:
    saved = objects.CASCADE_MAX
    if cascade_only:
        objects.CASCADE_MAX = 10**9
    try:
        return compile_rules(Inputs([Source("bench.json", text, True)]), OPTIONS)[2].text
    finally:
        objects.CASCADE_MAX = saved


MINIMAL = """table ip bench {
 map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }
 chain svc {
%s
 }
 chain pre { type nat hook prerouting priority dstnat; policy accept;
  ip daddr . meta l4proto . th dport vmap @service-ips
 }
}
add element ip bench service-ips { %s . tcp . %d : goto svc }
"""
CONNTRACK_ONLY = "table ip bench {\n chain pre { type filter hook prerouting priority 0; policy accept;\n  ct state new counter\n }\n}\n"


def minimal(n: int) -> str:
    rules = "\n".join(
        f"  meta l4proto tcp{f' numgen random mod {n - i} 0' if n - i > 1 else ''} dnat to {endpoint(i)}:8080" for i in range(n)
    )
    return MINIMAL % (rules, VIP, PORT)


def measure(lab: Lab, variants: dict[str, tuple[str, str]], connections: int, rounds: int) -> dict[str, float]:
    """variants: label -> (ruleset text, address to connect to); the median of the rounds' medians."""
    results: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(rounds):
        for label, (text, address) in variants.items():
            lab.node_exec(["nft", "flush", "ruleset"])
            if text:
                with tempfile.NamedTemporaryFile("w", suffix=".nft") as f:
                    f.write(text)
                    f.flush()
                    lab.node_exec(["nft", "-f", f.name], timeout=300)
            out = lab.exec_in("client", [CONNECT, address, str(PORT if address == VIP else 8080), str(connections)], timeout=600).stdout.split()
            ok, median, failed = int(out[0]), float(out[1]), int(out[4])
            assert failed == 0 and ok == connections, (label, out)
            results[label].append(median)
    return {label: statistics.median(v) for label, v in results.items()}


CONNECT = os.path.join(HERE, "out", "connect")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--endpoints", type=int, nargs="+", default=[1, 10, 32, 33, 100, 1000, 5000])
    ap.add_argument("--services", type=int, nargs="+", default=[1, 1000, 10000])
    args = ap.parse_args()
    os.makedirs(os.path.dirname(CONNECT), exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", CONNECT, os.path.join(HERE, "connect.c")], check=True)
    with Lab(pods=("backend",), clients=("client",), tcp_ports=(8080,), udp_ports=()) as lab:
        backend = lab.pods["backend"]
        lab.exec_in("backend", ["ip", "route", "add", "local", "10.245.0.0/16", "dev", "lo"])
        lab.node_exec(["ip", "route", "add", "10.245.0.0/16", "via", backend.ip4])

        print(f"1. one Service, N endpoints: median connect() in us ({args.connections} connections, {args.rounds} rounds)")
        variants = {}
        for n in args.endpoints:
            text = one_service(n)
            variants[f"svcctl {n}"] = (compiled(text), VIP)
            variants[f"cascade {n}"] = (compiled(text, cascade_only=True), VIP)
        got = measure(lab, variants, args.connections, args.rounds)
        base = {kind: got[f"{kind} 10"] for kind in ("svcctl", "cascade")} if 10 in args.endpoints else None
        print(f"{'endpoints':>10} {'svcctl':>10} {'x10ep':>7} {'cascade':>10} {'x10ep':>7}")
        for n in args.endpoints:
            s, c = got[f"svcctl {n}"], got[f"cascade {n}"]
            rs = f"{s / base['svcctl']:.2f}" if base else "-"
            rc = f"{c / base['cascade']:.2f}" if base else "-"
            print(f"{n:>10} {s:>10.1f} {rs:>7} {c:>10.1f} {rc:>7}")

        print("\n2. the fixed cost of a new connection: median connect() in us")
        fixed = {
            "direct to the backend (no rules)": ("", endpoint(0)),
            "direct, conntrack loaded": (CONNTRACK_ONLY, endpoint(0)),
            "minimal dispatch (vmap + cascade of 10)": (minimal(10), VIP),
        }
        for count in args.services:
            fixed[f"svcctl, {count} Services"] = (compiled(many_services(count)), VIP)
        got = measure(lab, fixed, args.connections, args.rounds)
        floor = got["minimal dispatch (vmap + cascade of 10)"]
        for label, value in got.items():
            print(f"{label:>42} {value:8.1f}   {value - floor:+6.1f} over the minimal dispatch")


if __name__ == "__main__":
    main()
