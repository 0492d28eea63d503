"""Benchmark: `svcctl dns` for a synthetic cluster (issue: dns), and the time Knot DNS needs for
the zone it writes.

    .venv/bin/python bench/dns.py [--services 10000] [--endpoints 10] [--repeat 3]

The cluster is bench/cluster.py's (one EndpointSlice of --endpoints endpoints per Service), with
every fourth Service headless and its endpoints named like a StatefulSet's (hostname pod-N).
Times, best of --repeat: the dns stage alone (resolved Services -> records -> zone text, target
<= 2 s for 10,000 Services), the whole command as a user runs it (a new process: read, validate,
resolve, dns, write), kzonecheck on the zone, and knotd from start until it answers the zone's
SOA (with semantic checks on)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import cluster  # noqa: E402

from svcctl.dns import dns_settings, dns_text  # noqa: E402
from svcctl.load import gc_paused  # noqa: E402
from svcctl.options import build_options  # noqa: E402
from svcctl.pipeline import read_services  # noqa: E402
from svcctl.sources import read_manifests  # noqa: E402


def write_cluster(path: str, services: int, endpoints: int) -> None:
    data = cluster.cluster(services, endpoints)
    for item in data["items"]:
        if item["kind"] == "Service":
            i = int(item["metadata"]["name"].removeprefix("svc-"))
            if i % 4 == 0:
                item["spec"] = {**item["spec"], "type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}
                item["spec"]["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} for p in item["spec"]["ports"]]
        elif int(item["metadata"]["name"].removeprefix("svc-").split("-")[0]) % 4 == 0:
            for e, endpoint in enumerate(item["endpoints"]):
                endpoint["hostname"] = f"pod-{e}"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


def best(repeat: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    return min(times), result


def _dnspython():
    """dnspython's modules. This file is named dns.py and its folder is first on sys.path, so
    `import dns` would find it: import with the folder left out."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import dns.message
        import dns.query
    finally:
        sys.path[:] = saved
    return dns.message, dns.query


def knotd_load(zone_file: Path, origin: str, serial: int) -> float | None:
    """Seconds from starting knotd until it answers the zone's SOA with its serial."""
    knotd = shutil.which("knotd", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if knotd is None:
        return None
    message, query = _dnspython()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(zone_file, Path(tmp) / f"{origin}.zone")
        conf = Path(tmp) / "knot.conf"
        conf.write_text(
            f'server:\n    rundir: "{tmp}"\n    listen: 127.0.0.1@{port}\n'
            f'database:\n    storage: "{tmp}"\n'
            f'template:\n  - id: default\n    storage: "{tmp}"\n    file: "%s.zone"\n    semantic-checks: on\n'
            f"    zonefile-sync: -1\n    journal-content: none\n"
            f"zone:\n  - domain: {origin}\n"
        )
        t0 = time.perf_counter()
        server = subprocess.Popen([knotd, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while time.perf_counter() - t0 < 120:
                try:
                    answer = query.udp(message.make_query(origin, "SOA"), "127.0.0.1", port=port, timeout=0.2)
                    if answer.answer and answer.answer[0][0].serial == serial:
                        return time.perf_counter() - t0
                except Exception:  # noqa: BLE001 - not up yet
                    pass
                time.sleep(0.02)
            return None
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    manifest = out / f"dns-cluster-{args.services}x{args.endpoints}.json"
    if not manifest.exists():
        write_cluster(str(manifest), args.services, args.endpoints)
    options = build_options({"node-name": "node-0"})
    settings = dns_settings({})
    inventory, services = read_services(read_manifests([str(manifest)]), options)

    def stage() -> str:
        with gc_paused():  # as the pipeline's stages run
            return dns_text(inventory, services, settings, as_json=False)[0]

    stage_time, text = best(args.repeat, stage)
    zone_file = out / "cluster.local.zone"
    zone_file.write_text(str(text))
    records = str(text).count("\n") - 1
    print(f"{args.services} services ({args.services // 4} headless) x {args.endpoints} endpoints: "
          f"{records} records, {zone_file.stat().st_size / 1e6:.1f} MB")
    print(f"dns stage (records + zone text): {stage_time:.2f}s (target <= 2 s)")

    svcctl = Path(sys.executable).with_name("svcctl")
    command = [str(svcctl), "dns", "--node-name", "node-0", str(manifest)]
    command_time, _ = best(args.repeat, lambda: subprocess.run(command, stdout=subprocess.DEVNULL, check=True))
    print(f"whole command (svcctl dns, new process): {command_time:.2f}s")

    kzonecheck = shutil.which("kzonecheck")
    if kzonecheck:
        check_time, _ = best(1, lambda: subprocess.run([kzonecheck, "-o", "cluster.local", str(zone_file)], check=True))
        print(f"kzonecheck (knotd's semantic checks): {check_time:.2f}s")
    serial = int(str(text).splitlines()[1].split()[6])
    load = knotd_load(zone_file, "cluster.local", serial)
    print("knotd load (start until it answers)" + (f": {load:.2f}s" if load is not None else ": knotd not installed"))


if __name__ == "__main__":
    main()
