"""Benchmark: the back ends side by side, in one run (docs/iptables-layout.md, section 7).

    sudo .venv/bin/python bench/backends.py [--services 10000] [--endpoints 10] [--latency 1 1000 10000]

For nftables, iptables-nft and iptables-legacy:

1. rules: the wall time of the ``svcctl`` command a user runs (interpreter start-up included) on a
   synthetic cluster (bench/cluster.py), best of --repeat for compile; in a throwaway network
   namespace: apply to a node without svcctl's rules, apply with one Service changed (an
   endpoint less), apply unchanged (must send nothing), delete;
2. first packet: the time of a TCP connect() through the node to a ClusterIP (tests/e2e/lab.py:
   a client, the node, a pod; bench/connect.c, at C speed) with 1, 1k and 10k Services loaded.
   The Service connected to sorts last: iptables tries the Services' rules one after the other
   (kube-proxy's KUBE-SERVICES chain as well), the nftables maps look the address up at once.
   Median and p90 in microseconds, and the median over a connect to the pod itself, without a
   Service (the node's forwarding alone).

A script, not a test. Needs root, nft, iptables (both flavours) and a C compiler.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
import cluster  # noqa: E402
from lab import Lab  # noqa: E402

from svcctl.kernel import in_throwaway_netns  # noqa: E402

OUT = HERE / "out"
SVCCTL = str(Path(sys.executable).parent / "svcctl")
BACKENDS = {"nftables": [], "iptables-nft": ["--backend", "iptables", "--iptables-mode", "nft"],
            "iptables-legacy": ["--backend", "iptables", "--iptables-mode", "legacy"]}
NODE = ["--node-name", "node-0", "--cluster-cidr", "10.128.0.0/9"]
TARGET_IP = "10.111.255.250"  # outside the synthetic Services' 10.96.0.10 + i


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ...: exit {done.returncode}: {done.stderr.strip()}")
    return time.perf_counter() - start


def files(services: int, endpoints: int) -> tuple[str, str]:
    """The cluster, and the same with one endpoint less for one Service."""
    OUT.mkdir(exist_ok=True)
    whole, changed = OUT / f"cluster-{services}x{endpoints}.json", OUT / f"cluster-{services}x{endpoints}-changed.json"
    data = cluster.cluster(services, endpoints)
    whole.write_text(json.dumps(data))
    for item in data["items"]:
        if item["kind"] == "EndpointSlice" and item["metadata"]["name"] == "svc-5-abcde":
            item["endpoints"] = item["endpoints"][:-1]
    changed.write_text(json.dumps(data))
    return str(whole), str(changed)


def rules(services: int, endpoints: int, repeat: int) -> dict[str, dict[str, float]]:
    whole, changed = files(services, endpoints)
    out = {}
    for name, args in BACKENDS.items():
        compile_s = min(timed([SVCCTL, "compile", *args, whole, *NODE]) for _ in range(repeat))

        def work(args: list[str] = args) -> dict[str, float]:
            return {
                "apply": timed([SVCCTL, "apply", *args, whole, *NODE]),
                "one Service changed": timed([SVCCTL, "apply", *args, changed, *NODE]),
                "unchanged": timed([SVCCTL, "apply", *args, changed, *NODE]),
                "delete": timed([SVCCTL, "delete", *args]),
            }

        out[name] = {"compile": compile_s, **in_throwaway_netns(work)}
        print(f"  {name}: " + "  ".join(f"{k} {v:.2f}s" for k, v in out[name].items()), flush=True)
    return out


def latency_manifest(services: int, pod_ip: str) -> str:
    """services - 1 synthetic Services, then the one connected to, last in namespace/name order."""
    data = cluster.cluster(services - 1, 2)
    target = copy.deepcopy(cluster.service(0))
    target["metadata"].update(name="target", namespace="zz")
    target["spec"].update(clusterIP=TARGET_IP, clusterIPs=[TARGET_IP], type="ClusterIP", selector={"app": "target"})
    target["spec"]["ports"][0].pop("nodePort", None)
    target["spec"]["ports"][0]["targetPort"] = 8080
    slice_ = cluster.endpoint_slice(0, 1)
    slice_["metadata"].update(name="target-1", namespace="zz", labels={"kubernetes.io/service-name": "target"})
    slice_["endpoints"][0].update(addresses=[pod_ip], nodeName="node-0")
    data["items"] += [target, slice_]
    return json.dumps(data)


def connect(lab: Lab, binary: Path, address: str, count: int) -> tuple[float, float]:
    out = lab.exec_in("client", [str(binary), address, "8080" if address != TARGET_IP else "80", str(count)], timeout=600).stdout.split()
    n, median, p90, _, failed = out[0], float(out[1]), float(out[2]), out[3], int(out[4])
    if failed:
        raise SystemExit(f"{failed} of {n} connects to {address} failed")
    return median, p90


def latency(sizes: list[int], count: int) -> dict[str, dict[int, tuple[float, float]]]:
    binary = OUT / "connect"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(HERE / "connect.c")], check=True)
    out: dict[str, dict[int, tuple[float, float]]] = {}
    with Lab(pods=("pod-a",), clients=("client",), prefix="svcbench") as lab:
        pod_ip = lab.pods["pod-a"].ip4
        out["no Service (to the pod)"] = {0: connect(lab, binary, pod_ip, count)}
        for size in sizes:
            path = OUT / f"latency-{size}.json"
            path.write_text(latency_manifest(size, pod_ip))
            for name, args in BACKENDS.items():
                lab.node_exec([SVCCTL, "apply", *args, str(path), "--node-name", "node-0", "--cluster-cidr", "10.244.0.0/16"], timeout=600)
                out.setdefault(name, {})[size] = connect(lab, binary, TARGET_IP, count)
                lab.node_exec([SVCCTL, "delete", *args], timeout=600)
                print(f"  {name}, {size} Services: median {out[name][size][0]:.1f} us, p90 {out[name][size][1]:.1f} us", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--latency", type=int, nargs="*", default=[1, 1000, 10000])
    ap.add_argument("--connects", type=int, default=3000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    print(f"rules, {args.services} Services x {args.endpoints} endpoints (seconds, the svcctl command):")
    timings = rules(args.services, args.endpoints, args.repeat)
    columns = list(next(iter(timings.values())))
    print(f"| back end | {' | '.join(columns)} |\n|---|{'---|' * len(columns)}")
    for name, row in timings.items():
        print(f"| {name} | {' | '.join(f'{row[c]:.2f}' for c in columns)} |")
    if args.latency:
        print(f"\nfirst packet: TCP connect() to the last Service's ClusterIP, {args.connects} connects (microseconds, median / p90):")
        found = latency(args.latency, args.connects)
        base = found.pop("no Service (to the pod)")[0]
        print(f"| back end | {' | '.join(f'{n} Services' for n in args.latency)} |\n|---|{'---|' * len(args.latency)}")
        for name, row in found.items():
            print(f"| {name} | {' | '.join(f'{row[n][0]:.0f} / {row[n][1]:.0f}' for n in args.latency)} |")
        print(f"| no Service (to the pod) | {base[0]:.0f} / {base[1]:.0f} |")


if __name__ == "__main__":
    main()
