"""An apply that removes a UDP endpoint clears the conntrack entries DNATed to it (as
kube-proxy does): otherwise a UDP client that keeps its source port keeps talking to the gone
backend until the entry times out, since UDP has no end of connection. Real traffic, root only."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from lab import PYTHON, Lab
from scenarios import Svcctl, backend_fixture  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("nft") and shutil.which("conntrack")),
                       reason="needs iproute2, nft and conntrack"),
]
SVCCTL = str(Path(sys.executable).parent / "svcctl")

# One UDP datagram from a fixed source port, so that every send reuses one conntrack entry.
FIXED_PORT_CLIENT = textwrap.dedent("""
    import json, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 40053))
    s.settimeout(2)
    s.sendto(b"hi", ("10.96.0.60", 53))
    print(json.loads(s.recv(4096))["pod"])
""")


def manifest(endpoint_ip: str) -> str:
    return textwrap.dedent(f"""
        apiVersion: v1
        kind: Service
        metadata: {{name: dns, namespace: default}}
        spec:
          clusterIP: 10.96.0.60
          ports: [{{name: dns, port: 53, protocol: UDP, targetPort: 8080}}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: dns-1
          namespace: default
          labels: {{kubernetes.io/service-name: dns}}
        addressType: IPv4
        ports: [{{name: dns, port: 8080, protocol: UDP}}]
        endpoints:
        - addresses: ["{endpoint_ip}"]
          nodeName: node-1
    """)


def test_udp_flows_to_a_removed_endpoint_are_cleared(tmp_path, backend):
    with Lab(pods=("pod-a", "pod-b"), clients=("client",)) as lab:
        svcctl = Svcctl(lab, tmp_path, backend)
        path = tmp_path / "dns.yaml"
        apply = [SVCCTL, "apply", *svcctl.backend_args(), str(path), "--node-name", "node-1", "-v"]

        def ask() -> str:
            return lab.exec_in("client", [PYTHON, "-I", "-c", FIXED_PORT_CLIENT]).stdout.strip()

        def flows_to(ip: str) -> int:
            out = lab.node_exec(["conntrack", "-L", "-p", "udp", "--dst-nat", ip], check=False)
            return len([line for line in out.stdout.splitlines() if line.startswith("udp")])

        a, b = lab.pods["pod-a"].ip4, lab.pods["pod-b"].ip4
        path.write_text(manifest(a))
        lab.node_exec(apply)
        assert [ask(), ask()] == ["pod-a", "pod-a"]
        assert flows_to(a) == 1

        path.write_text(manifest(b))
        result = lab.node_exec(apply)
        assert "cleared UDP conntrack entries to 1 removed endpoint(s)" in result.stderr
        assert flows_to(a) == 0
        assert ask() == "pod-b"  # the same 5-tuple now reaches the new endpoint
        assert svcctl.delete().returncode == 0
