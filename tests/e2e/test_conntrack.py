"""UDP has no end of connection, so a client that keeps its source port keeps one conntrack
entry, and the nat hooks see only its first packet. An apply clears the entries that would
otherwise outlive the rules that made them, as kube-proxy does: those DNATed to an endpoint it
removes, and those that began before a Service port had rules at all (not DNATed, sent on by the
node's routes) once it has some. Real traffic, root only."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from lab import NODE_IP4, NODE_IP6, Lab
from scenarios import Svcctl, backend_fixture  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("nft") and shutil.which("conntrack")),
                       reason="needs iproute2, nft and conntrack"),
]
SVCCTL = str(Path(sys.executable).parent / "svcctl")

def manifest(endpoint_ip: str, name: str = "dns", cluster_ip: str = "10.96.0.60", frontend: str = "") -> str:
    """The UDP Service ``name`` with one endpoint; ``frontend``: "externalIP" or "NodePort" adds
    198.51.100.60 or node port 30053."""
    spec = {"externalIP": "externalIPs: [198.51.100.60]", "NodePort": "type: NodePort"}.get(frontend, "")
    node_port = ", nodePort: 30053" if frontend == "NodePort" else ""
    return textwrap.dedent(f"""
        apiVersion: v1
        kind: Service
        metadata: {{name: {name}, namespace: default}}
        spec:
          clusterIP: {cluster_ip}
          ports: [{{name: dns, port: 53, protocol: UDP, targetPort: 8080{node_port}}}]
          {spec}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: {name}-1
          namespace: default
          labels: {{kubernetes.io/service-name: {name}}}
        addressType: IPv4
        ports: [{{name: dns, port: 8080, protocol: UDP}}]
        endpoints:
        - addresses: ["{endpoint_ip}"]
          nodeName: node-1
    """)


def flows(lab: Lab, *selection: str) -> int:
    out = lab.node_exec(["conntrack", "-L", "-p", "udp", *selection], check=False)
    return len([line for line in out.stdout.splitlines() if line.startswith("udp")])


def test_udp_flows_to_a_removed_endpoint_are_cleared(tmp_path, backend):
    with Lab(pods=("pod-a", "pod-b"), clients=("client",)) as lab:
        svcctl = Svcctl(lab, tmp_path, backend)
        path = tmp_path / "dns.yaml"
        apply = [SVCCTL, "apply", *svcctl.backend_args(), str(path), "--node-name", "node-1", "-v"]

        a, b = lab.pods["pod-a"].ip4, lab.pods["pod-b"].ip4
        path.write_text(manifest(a))
        lab.node_exec(apply)
        assert [lab.datagram("client", "10.96.0.60", 53), lab.datagram("client", "10.96.0.60", 53)] == ["pod-a", "pod-a"]
        assert flows(lab, "--dst-nat", a) == 1

        path.write_text(manifest(b))
        result = lab.node_exec(apply)
        assert "cleared UDP conntrack entries to 1 removed endpoint(s)" in result.stderr
        assert flows(lab, "--dst-nat", a) == 0
        assert lab.datagram("client", "10.96.0.60", 53) == "pod-b"  # the same 5-tuple now reaches the new endpoint
        assert svcctl.delete().returncode == 0


# A node firewall that tracks connections: conntrack runs in a namespace only once some rule
# needs it, and on a real node something always does.
FIREWALL = """table inet fw {
    chain input {
        type filter hook input priority 0; ct state established accept
    }
}
"""


@pytest.mark.parametrize(("frontend", "before"), [("externalIP", "another Service"), ("NodePort", "a firewall")])
def test_udp_flows_that_began_before_their_service_are_cleared(tmp_path, backend, frontend, before):
    """A client sends to a Service address before any rule of svcctl's catches it: to an
    externalIP, which the node routes on (the lab's sink route, as a real node's default route
    would), or to a NodePort, which the node answers with port unreachable. Conntrack keeps
    either flow, not DNATed; once the Service is applied, the flow would bypass its DNAT for as
    long as the client keeps sending. The apply deletes it, and the same 5-tuple reaches the pod.
    With another Service applied before, the apply updates svcctl's tables; with only a
    firewall, it creates them."""
    with Lab(pods=("pod-a", "pod-b"), clients=("client",)) as lab:
        svcctl = Svcctl(lab, tmp_path, backend)
        path = tmp_path / "dns.yaml"
        apply = [SVCCTL, "apply", *svcctl.backend_args(), str(path), "--node-name", "node-1", "-v"]
        a, b = lab.pods["pod-a"].ip4, lab.pods["pod-b"].ip4
        lab.node_exec(["ip", "route", "add", "198.51.100.0/24", "dev", "svc0"])
        other = manifest(b, name="other", cluster_ip="10.96.0.61")
        if before == "another Service":
            path.write_text(other)
            lab.node_exec(apply)
        else:
            lab.nft(FIREWALL)
            other = ""
        to = ("198.51.100.60", 53) if frontend == "externalIP" else (NODE_IP4, 30053)
        lab.datagram("client", *to, answer=False)
        bypassing = ["--orig-dst", to[0], "--reply-src", to[0]]
        assert flows(lab, *bypassing) == 1

        path.write_text(f"{other}\n---\n{manifest(a, frontend=frontend)}")
        result = lab.node_exec(apply)
        assert "cleared UDP conntrack entries that bypassed 1 new Service port(s)" in result.stderr
        assert flows(lab, *bypassing) == 0
        assert lab.datagram("client", *to) == "pod-a"
        assert svcctl.delete().returncode == 0


def test_a_new_udp_node_port_leaves_flows_it_does_not_take_alone(tmp_path, backend):
    """Flows that merely share the new NodePort's port stay: one of the other family (the
    Service is IPv4 only) and one the node forwards (pod-a to a client host, not to the node)."""
    with Lab(pods=("pod-a",), clients=("client",)) as lab:
        svcctl = Svcctl(lab, tmp_path, backend)
        path = tmp_path / "dns.yaml"
        lab.nft(FIREWALL)
        client = lab.clients["client"].ip4
        lab.datagram("client", NODE_IP6, 30053, answer=False)
        lab.datagram("pod-a", client, 30053, answer=False)
        other_family = ["-f", "ipv6", "--orig-dst", NODE_IP6, "--reply-src", NODE_IP6]
        forwarded = ["--orig-dst", client, "--orig-port-dst", "30053"]
        assert (flows(lab, *other_family), flows(lab, *forwarded)) == (1, 1)

        path.write_text(manifest(lab.pods["pod-a"].ip4, frontend="NodePort"))
        result = lab.node_exec([SVCCTL, "apply", *svcctl.backend_args(), str(path), "--node-name", "node-1", "-v"])
        assert "bypassed" not in result.stderr
        assert (flows(lab, *other_family), flows(lab, *forwarded)) == (1, 1)
        assert svcctl.delete().returncode == 0
