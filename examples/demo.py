"""svcctl on the bundled example, in a throwaway lab of network namespaces (scripts/demo).

Builds a node namespace with five pods (web-1..3, api-1, api-2, each answering with its name
and the address it saw) and a client outside the cluster network, applies examples/web.yaml
inside the node namespace with `svcctl apply`, shows what svcctl made of it, sends requests,
and removes everything. The host's own network and rules are never touched."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from lab import NODE_IP4, Lab  # noqa: E402  (the same lab the end-to-end tests use)

SVCCTL = str(Path(sys.executable).parent / "svcctl")
MANIFEST = str(ROOT / "examples" / "web.yaml")
NODE_OPTIONS = ["--node-name", "node-1", "--cluster-cidr", "10.244.0.0/16"]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def svcctl(lab: Lab, *args: str) -> subprocess.CompletedProcess:
    result = lab.node_exec([SVCCTL, *args], check=False)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result


def tally(lab: Lab, address: str, port: int, n: int) -> None:
    results = lab.requests("client", address, port, n)
    seen = collections.Counter(f"{r.reply['pod']} (saw {r.reply['peer']})" if r.ok else r.error for r in results)
    for what, count in sorted(seen.items()):
        print(f"  {count:3d} x {what}")


def main() -> None:
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        sys.exit("demo: run as root (it creates network namespaces)")
    with Lab(pods=("web-1", "web-2", "web-3", "api-1", "api-2"), clients=("client",)) as lab:
        step(f"svcctl show {MANIFEST} --node-name node-1")
        services = json.loads(lab.node_exec([SVCCTL, "show", "-o", "json", MANIFEST, "--node-name", "node-1"]).stdout)
        svcctl(lab, "show", MANIFEST, "--node-name", "node-1")
        web_ip = next(s["clusterIPs"][0] for s in services if s["name"] == "web")

        step("svcctl apply (inside the lab's node namespace)")
        svcctl(lab, "apply", MANIFEST, *NODE_OPTIONS)

        step("the chains svcctl loaded for shop/web (nft list chain ...)")
        chains = lab.node_exec(["nft", "list", "chains", "ip"]).stdout
        for name in [line.split()[1] for line in chains.splitlines() if line.strip().startswith("chain ") and "shop/web" in line]:
            print(lab.node_exec(["nft", "list", "chain", "ip", "svcctl", name]).stdout.rstrip())

        step(f"svcctl trace --to {web_ip}:80: what the rules do to a new connection, and why")
        svcctl(lab, "trace", MANIFEST, "--to", f"{web_ip}:80", *NODE_OPTIONS)
        step(f"60 requests from the client to web's ClusterIP {web_ip}:80 (balanced over 3 pods)")
        tally(lab, web_ip, 80, 60)
        step(f"30 requests to NodePort {NODE_IP4}:30080 (externalTrafficPolicy Cluster: masqueraded to the node)")
        tally(lab, NODE_IP4, 30080, 30)
        step("20 requests to api 10.96.0.20:8080 (only api-1 is ready; ClientIP affinity)")
        tally(lab, "10.96.0.20", 8080, 20)
        step("5 UDP requests to resolver 10.96.0.53:53 (no endpoints: rejected at once)")
        results = lab.requests("client", "10.96.0.53", 53, 5, proto="udp")
        print("  " + ", ".join(r.error or "answered" for r in results))

        step("svcctl diff right after the apply (exit 0: nothing differs)")
        print(f"  exit status {svcctl(lab, 'diff', MANIFEST, *NODE_OPTIONS).returncode}")
        with tempfile.TemporaryDirectory(prefix="svcctl-demo-") as scratch:
            changed = Path(scratch) / "web.yaml"
            changed.write_text(Path(MANIFEST).read_text().replace("podIP: 10.244.1.3", "podIP: 10.244.1.9"))
            step("web-2 moved to 10.244.1.9: svcctl diff says what apply would change (exit 1)")
            print(f"  exit status {svcctl(lab, 'diff', str(changed), *NODE_OPTIONS).returncode}")
        step("svcctl delete")
        svcctl(lab, "delete")
    print("\nlab removed.")


if __name__ == "__main__":
    main()
