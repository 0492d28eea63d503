"""Cluster objects as node settings (svcctl.cluster): ServiceCIDRs add service CIDRs, this node's
Node object gives its IPs; the source-range exception for the node (kube-proxy's allowFromNode)."""

from __future__ import annotations

import ipaddress

from conftest import dedent
from svcctl.cluster import options_for
from svcctl.load import Inputs, Source
from svcctl.model import Node, ServiceCIDR
from svcctl.options import Options
from svcctl.pipeline import plan_rules

NET = ipaddress.ip_network


def cidr(name: str, *cidrs: str) -> ServiceCIDR:
    return ServiceCIDR.model_validate({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": name}, "spec": {"cidrs": list(cidrs)}})


def node(name: str, *addresses: tuple[str, str]) -> Node:
    return Node.model_validate({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {"addresses": [{"type": t, "address": a} for t, a in addresses]},
    })


def test_service_cidrs_come_after_the_configured_ones_each_once() -> None:
    options = Options(node_name="n1", service_cidrs=(NET("10.96.0.0/16"),))
    found = options_for(options, [cidr("b", "10.100.0.0/16"), cidr("a", "10.96.0.0/16", "fd00::/112")], [])
    assert found.service_cidrs == (NET("10.96.0.0/16"), NET("fd00::/112"), NET("10.100.0.0/16"))
    assert options_for(options, [], []) is options


def test_node_ips_are_this_nodes_primary_ones() -> None:
    nodes = [
        node("n2", ("InternalIP", "192.168.0.3")),
        node("n1", ("Hostname", "n1"), ("ExternalIP", "203.0.113.9"), ("ExternalIP", "2001:db8::9"),
             ("InternalIP", "192.168.0.2"), ("InternalIP", "192.168.0.4")),
    ]
    assert options_for(Options(node_name="n1"), [], nodes).node_ips == ("192.168.0.2", "2001:db8::9")  # InternalIP first, per family
    assert options_for(Options(node_name="n3"), [], nodes).node_ips == ()


LB = """
    apiVersion: v1
    kind: Service
    metadata: {name: lb}
    spec:
      type: LoadBalancer
      clusterIPs: [10.96.0.10, "fd00:10:96::10"]
      ipFamilyPolicy: RequireDualStack
      loadBalancerSourceRanges: [RANGES]
      ports: [{port: 80, nodePort: 30080}]
    status: {loadBalancer: {ingress: [{ip: 198.51.100.1}, {ip: "2001:db8:ff::1"}]}}
    ---
    apiVersion: v1
    kind: Endpoints
    metadata: {name: lb}
    subsets: [{addresses: [{ip: 10.244.1.5}, {ip: "fd00:244::5"}], ports: [{port: 80}]}]
    ---
    apiVersion: v1
    kind: Node
    metadata: {name: n1}
    status: {addresses: [{type: InternalIP, address: 192.168.0.2}]}
"""


def allowed(ranges: str, node_name: str = "n1") -> dict[int, tuple[str, ...]]:
    text = dedent(LB.replace("RANGES", ranges))
    plan = plan_rules(Inputs([Source("m.yaml", text, False)]), Options(node_name=node_name))[1]
    return {f.version: next((r for p in f.ports for _, r in p.firewall), ()) for f in plan.families}


def test_ranges_that_let_the_node_in_let_the_load_balancer_ips_in() -> None:
    assert allowed("192.168.0.0/24, 203.0.113.0/24") == {4: ("192.168.0.0/24", "198.51.100.1", "203.0.113.0/24"), 6: ()}
    # the node is not in the ranges, or it is another node: the ranges alone
    assert allowed("203.0.113.0/24")[4] == ("203.0.113.0/24",)
    assert allowed("192.168.0.0/24", node_name="n2")[4] == ("192.168.0.0/24",)
    # an IPv6 range does not let an IPv4 node in
    assert allowed("192.168.9.0/24, '2001:db8::/32'") == {4: ("192.168.9.0/24",), 6: ("2001:db8::/32",)}


def test_a_node_address_must_be_an_ip(write, run_cli) -> None:
    path = write("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {addresses: [{type: InternalIP, address: nope}, {type: Hostname, address: n1}]}\n")
    result = run_cli("validate", path)
    assert result.code == 2
    assert result.err == f'{path}:4: Node n1: status.addresses[0].address: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)\n'
