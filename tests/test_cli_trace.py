"""`svcctl trace` through the real entry point: exit statuses, bad options as one-line problems,
the JSON schema, and (as root, in throwaway namespaces) --kernel and --live."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SVCCTL = Path(sys.executable).parent / "svcctl"

WEB = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  clusterIP: 10.96.0.50
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: shop}
subsets:
- addresses: [{ip: 10.244.1.5, nodeName: node-a}, {ip: 10.244.2.5, nodeName: node-b}, {ip: 10.244.2.6, nodeName: node-b}]
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec: {clusterIP: 10.96.0.52, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.53
  loadBalancerSourceRanges: [10.0.0.0/8]
  ports: [{port: 80, nodePort: 30081}]
status: {loadBalancer: {ingress: [{ip: 198.51.100.1}]}}
"""
NODE = ("--node-name", "node-a", "--cluster-cidr", "10.244.0.0/16")


def test_text(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    run = run_cli("trace", write(WEB), *NODE, "--to", "10.96.0.50:80")
    assert (run.code, run.err) == (0, "")
    assert run.out.splitlines()[:6] == [
        "packet      tcp 203.0.113.1 -> 10.96.0.50:80, a new connection",
        "service     shop/web:http, by its ClusterIP",
        "verdict     dnat",
        "endpoints   10.244.1.5:8080  1/3   33.3%",
        "            10.244.2.5:8080  1/3   33.3%",
        "            10.244.2.6:8080  1/3   33.3%",
    ]


def test_json(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    run = run_cli("trace", write(WEB), *NODE, "--to", "192.168.1.1:30080", "--from", "10.244.1.5", "-o", "json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    assert {k: data[k] for k in ("verdict", "service", "path", "masquerade", "affinity")} == {
        "verdict": "dnat", "service": "shop/web:http", "path": "node-port", "masquerade": True, "affinity": False,
    }
    assert [(e["address"], e["fraction"]) for e in data["endpoints"]] == [("10.244.1.5:8080", "1/3"), ("10.244.2.5:8080", "1/3"), ("10.244.2.6:8080", "1/3")]
    assert sum(e["probability"] for e in data["endpoints"]) == pytest.approx(1)
    assert all(isinstance(r, str) for r in data["reasons"]) and data["reasons"][0].startswith("source: ")
    assert (data["from"], data["to"], data["protocol"], data["fromNode"]) == ("10.244.1.5", "192.168.1.1:30080", "tcp", False)
    assert "kernel" not in data


@pytest.mark.parametrize("verdict, to", [
    ("dnat", "10.96.0.50:80"), ("reject", "10.96.0.52:80"), ("reject", "10.96.0.50:81"), ("drop", "198.51.100.1:80"),
    ("drop", "10.96.0.51:80"), ("untouched", "192.0.2.9:80"),
])
def test_every_verdict_exits_0(write, run_cli, verdict: str, to: str) -> None:  # type: ignore[no-untyped-def]
    run = run_cli("trace", write(WEB), *NODE, "--to", to, "-o", "json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["verdict"] == verdict


@pytest.mark.parametrize("args, line", [
    (["--to", "10.96.0.50"], 'command line: --to: "10.96.0.50" is not an address and port (e.g. 10.96.0.10:80 or [fd00:10:96::10]:80)'),
    (["--to", "10.96.0.50:80", "--from", "somewhere"], 'command line: --from: "somewhere" is not an IP address, "node" or "node:IP"'),
    (["--to", "[fd00::1]:80", "--from", "10.0.0.1"], "command line: --from: 10.0.0.1 is IPv4, but --to [fd00::1]:80 is IPv6"),
])
def test_bad_options_are_one_line_exit_2(write, run_cli, args: list[str], line: str) -> None:  # type: ignore[no-untyped-def]
    run = run_cli("trace", write(WEB), *NODE, *args)
    assert (run.code, run.out, run.err.splitlines()) == (2, "", [line])


def test_usage_errors_exit_2(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    for args in (["--protocol", "icmp", "--to", "10.96.0.50:80"], []):
        run = run_cli("trace", write(WEB), *args)
        assert run.code == 2 and "Traceback" not in run.err


def test_bad_manifests_exit_2(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    run = run_cli("trace", write("kind: Service\napiVersion: v1\nmetadata: {name: x}\nspec: {ports: [{port: 0}]}\n"), "--to", "10.96.0.50:80")
    assert run.code == 2 and run.out == "" and "spec.ports[0].port" in run.err


# ---- --kernel and --live (root) -----------------------------------------------------------------

root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nft") or not os.access(SVCCTL, os.X_OK),
    reason="needs root, unshare, nft and the installed svcctl",
)


def _in_netns(script: str) -> subprocess.CompletedProcess[str]:
    """A shell script in a throwaway network namespace (svcctl apply there touches nothing else)."""
    return subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=120)


@root
def test_kernel_agrees_and_says_what_it_saw(write) -> None:  # type: ignore[no-untyped-def]
    path = write(WEB)
    proc = _in_netns(f"{SVCCTL} trace {path} {' '.join(NODE)} --to 10.96.0.50:80 --kernel")
    assert proc.returncode == 0, proc.stderr
    kernel = next(line for line in proc.stdout.splitlines() if line.startswith("kernel"))
    assert kernel.startswith("kernel  agrees: 24 probe(s), verdict dnat, DNAT to 10.244.1.5:8080 "), kernel
    assert "the rules give each endpoint the trace's chance" in proc.stdout


@root
def test_live_rules_that_differ_exit_1(write, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write(WEB)
    # Another endpoint set is live: the trace of WEB disagrees with it.
    other = write(WEB.replace("{ip: 10.244.2.6, nodeName: node-b}", "{ip: 10.244.3.7, nodeName: node-b}"), "other.yaml")
    args = f"{' '.join(NODE)} --to 10.96.0.50:80 --from 10.244.1.9"
    proc = _in_netns(
        f"{SVCCTL} apply {other} {' '.join(NODE)} >/dev/null && "
        f"{SVCCTL} trace {other} {args} --live >/dev/null && echo SAME-AGREES && "
        f"{SVCCTL} trace {path} {args} --live -o json"
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("SAME-AGREES\n")
    data = json.loads(proc.stdout.removeprefix("SAME-AGREES\n"))
    assert data["kernel"]["agrees"] is False
    assert "the kernel's rules give 10.244.3.7:8080 a chance of 1/3, the trace 0" in data["kernel"]["differences"]
    assert any(d.endswith("not one of the trace's endpoints") for d in data["kernel"]["differences"])


@root
def test_live_without_svcctl_tables_exits_3(write) -> None:  # type: ignore[no-untyped-def]
    proc = _in_netns(f"{SVCCTL} trace {write(WEB)} --to 10.96.0.50:80 --live")
    assert proc.returncode == 3
    assert proc.stderr.strip() == "svcctl: no svcctl table named svcctl is live here: apply the rules first, or leave out --live"


@pytest.mark.skipif(not shutil.which("setpriv") or not os.access(SVCCTL, os.X_OK), reason="needs setpriv and the installed svcctl")
def test_kernel_needs_root() -> None:
    with tempfile.TemporaryDirectory() as directory:  # in /tmp: readable for nobody, unlike pytest's tmp_path
        manifest = Path(directory) / "web.yaml"
        manifest.write_text(WEB)
        Path(directory).chmod(0o755)
        manifest.chmod(0o644)
        argv = [str(SVCCTL), "trace", str(manifest), "--to", "10.96.0.50:80", "--kernel"]
        if os.geteuid() == 0:  # as nobody, without privileges
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (3, "")
    assert proc.stderr.strip() == "svcctl: creating a network namespace needs CAP_SYS_ADMIN: run svcctl as root"
