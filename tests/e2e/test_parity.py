"""kube-proxy's edge behaviours, with real traffic (its nftables proxier's packet-flow tests:
TestClusterIPGeneral's "wrong port", "wrong protocol" and "unallocated IP in service CIDR",
TestInternalExternalMasquerade with masqueradeAll): what people replacing kube-proxy rely on.
docs/nft-layout.md explains each rule.

Needs root, iproute2 and nft; one lab (tests/e2e/lab.py) for the module.
"""

from __future__ import annotations

import os
import shutil

import pytest

from lab import NODE_IP4, POD_GATEWAY4, Lab, pods_seen
from scenarios import OTHER_NODE, SVCCTL, Svcctl, backend_fixture, pod, port, service  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("nft")), reason="needs iproute2 (ip) and nft"),
    pytest.mark.skipif(not os.access(SVCCTL, os.X_OK), reason=f"svcctl not installed at {SVCCTL}"),
]

LB_LOCAL, LB_CLUSTER = "203.0.113.30", "203.0.113.31"


@pytest.fixture(scope="module")
def lab(backend):  # one per back end: see test_traffic.lab
    with Lab(pods=("pod-a", "pod-b", "pod-c"), clients=("client",), tcp_ports=(8080,), udp_ports=(8080,)) as lab:
        yield lab


@pytest.fixture
def svc(lab, tmp_path, backend):
    helper = Svcctl(lab, tmp_path, backend)
    yield helper
    assert helper.delete().returncode == 0


def errors(results):
    return [r.error for r in results]


@pytest.fixture
def leaving(lab):
    """leaving(address) -> how many packets to ``address`` the node has sent on (its
    postrouting hook saw them: not dropped before), counted by a table of the test's own from
    the first call for that address on."""
    lab.node_exec(["nft", "-f", "-"], input="table inet leaving {\n chain post {\n type filter hook postrouting priority 0; policy accept;\n }\n}\n")
    counted: set[str] = set()

    def count(address: str) -> int:
        family = "ip6" if ":" in address else "ip"
        if address not in counted:
            lab.node_exec(["nft", "add", "rule", "inet", "leaving", "post", family, "daddr", address, "counter", "comment", f'"{address}"'])
            counted.add(address)
        listing = lab.node_exec(["nft", "list", "chain", "inet", "leaving", "post"]).stdout
        line = next(line for line in listing.splitlines() if f'"{address}"' in line)
        return int(line.split("packets ")[1].split()[0])

    yield count
    lab.node_exec(["nft", "delete", "table", "inet", "leaving"])


def dual_web(hosts, *, name="web", cluster=("10.96.0.10", "fd00:10:96::10"), ports=None):
    """A dual-stack Service of TCP and UDP port 80 (only) and its two pods."""
    a, b = hosts
    return [
        service(name, ports or [port(80, name="tcp"), port(80, protocol="UDP", name="udp")], selector={"app": name}, dual_stack=cluster),
        pod(a, {"app": name}), pod(b, {"app": name}),
    ]


@pytest.mark.parametrize("vip", ["10.96.0.10", "fd00:10:96::10"])
@pytest.mark.parametrize("src", ["client", "pod-c", "node"])
def test_a_port_no_service_port_defines_is_refused_at_once(lab, svc, vip, src):
    svc.apply(dual_web([lab.pods["pod-a"], lab.pods["pod-b"]], ports=[port(80, name="http")]))
    assert errors(lab.requests(src, vip, 80, 3, timeout=2.0)) == [None] * 3  # the defined port works
    # TCP to a port the Service does not have: a reset at once, as for a Service without endpoints.
    wrong_port = lab.requests(src, vip, 443, 3, timeout=2.0)
    assert errors(wrong_port) == ["refused"] * 3
    assert max(r.seconds for r in wrong_port) < 0.5
    # UDP to a TCP-only port: ICMP port unreachable, also at once. (A datagram the node itself
    # sends is rejected in the output hook: the kernel fails its send with EPERM right away.)
    wrong_protocol = lab.requests(src, vip, 80, 3, proto="udp", timeout=2.0)
    assert errors(wrong_protocol) == ["EPERM" if src == "node" else "refused"] * 3
    assert max(r.seconds for r in wrong_protocol) < 0.5


def test_an_unallocated_address_in_the_service_cidrs_is_dropped(lab, svc, leaving):
    svc.apply(dual_web([lab.pods["pod-a"], lab.pods["pod-b"]]))
    for vip in ("10.96.0.11", "fd00:10:96::11"):  # inside 10.96.0.0/12 and fd00:10:96::/112, no Service
        assert errors(lab.requests("pod-c", vip, 80, 2, timeout=0.5)) == ["timeout"] * 2
        assert errors(lab.requests("client", vip, 80, 2, proto="udp", timeout=0.5)) == ["timeout"] * 2
        # Dropped by the node's rules, not sent on towards the route for the service CIDRs.
        assert leaving(vip) == 0
    # Without svcctl's tables the same packets do leave towards that route: the check can fail.
    assert svc.delete().returncode == 0
    assert errors(lab.requests("pod-c", "10.96.0.11", 80, 1, timeout=0.5)) == ["timeout"]
    assert leaving("10.96.0.11") > 0


def test_other_addresses_are_left_alone(lab, svc):
    """An address outside the service CIDRs that no Service holds is none of svcctl's business:
    the node routes it as it would without svcctl (here: no route, so ICMP unreachable)."""
    svc.apply(dual_web([lab.pods["pod-a"], lab.pods["pod-b"]]))
    assert errors(lab.requests("pod-c", "198.18.0.1", 80, 2, timeout=1.0)) == ["unreachable"] * 2


def test_service_cidrs_follow_the_option(lab, svc, leaving):
    """--service-cidr names the ranges: with another range, 10.96.0.200 is no longer dropped."""
    svc.apply(dual_web([lab.pods["pod-a"], lab.pods["pod-b"]]), "--service-cidr", "10.96.0.0/24")
    assert errors(lab.requests("pod-c", "10.96.0.200", 80, 1, timeout=0.5)) == ["timeout"]  # in 10.96.0.0/24
    assert leaving("10.96.0.200") == 0
    svc.apply(dual_web([lab.pods["pod-a"], lab.pods["pod-b"]]), "--service-cidr", "10.96.1.0/24")
    assert errors(lab.requests("pod-c", "10.96.0.200", 80, 1, timeout=0.5)) == ["timeout"]
    assert leaving("10.96.0.200") > 0  # routed on towards svc0, not dropped


def test_masquerade_all_leaves_external_traffic_to_local_policy_services_alone(lab, svc):
    """kube-proxy's TestInternalExternalMasquerade, masqueradeAll: only traffic to ClusterIPs is
    marked; an external client of an externalTrafficPolicy Local Service keeps its address."""
    a, b, c = (lab.pods[n] for n in ("pod-a", "pod-b", "pod-c"))
    client = lab.clients["client"]
    svc.apply([
        service("local", [port(80, node_port=30030)], selector={"app": "local"}, type="LoadBalancer", cluster_ip="10.96.0.30",
                externalTrafficPolicy="Local", status={"loadBalancer": {"ingress": [{"ip": LB_LOCAL}]}}),
        pod(a, {"app": "local"}), pod(b, {"app": "local"}, node=OTHER_NODE),
        service("cluster", [port(80, node_port=30031)], selector={"app": "cluster"}, type="LoadBalancer", cluster_ip="10.96.0.31",
                externalTrafficPolicy="Cluster", status={"loadBalancer": {"ingress": [{"ip": LB_CLUSTER}]}}),
        pod(c, {"app": "cluster"}),
    ], "--masquerade-all")
    for target, port_number in ((LB_LOCAL, 80), (NODE_IP4, 30030)):
        results = lab.requests("client", target, port_number, 10, timeout=1.0)
        assert errors(results) == [None] * 10
        assert {(r.reply["pod"], r.reply["peer"]) for r in results} == {("pod-a", client.ip4)}
    # A pod reaching the Local Service's LB IP is short-circuited to every endpoint, unmarked.
    from_pod = lab.requests("pod-c", LB_LOCAL, 80, 20, timeout=1.0)
    assert set(pods_seen(from_pod)) == {"pod-a", "pod-b"} and {r.reply["peer"] for r in from_pod} == {c.ip4}
    # The ClusterIP: masqueraded whatever the source, pods included (the pod sees the node).
    to_cluster_ip = lab.requests("pod-c", "10.96.0.30", 80, 10, timeout=1.0)
    assert {r.reply["peer"] for r in to_cluster_ip} == {POD_GATEWAY4}
    # externalTrafficPolicy Cluster: masqueraded as always (to the node's address on the pod network).
    results = lab.requests("client", LB_CLUSTER, 80, 5, timeout=1.0)
    assert {r.reply["peer"] for r in results} == {POD_GATEWAY4}


def test_without_masquerade_all_pods_keep_their_address_to_cluster_ips(lab, svc):
    c = lab.pods["pod-c"]
    svc.apply([service("web", [port(80)], selector={"app": "web"}, cluster_ip="10.96.0.40"), pod(lab.pods["pod-a"], {"app": "web"})])
    assert {r.reply["peer"] for r in lab.requests("pod-c", "10.96.0.40", 80, 5, timeout=1.0)} == {c.ip4}
    # A client outside the cluster CIDRs is masqueraded (the node's address on the pod network).
    assert {r.reply["peer"] for r in lab.requests("client", "10.96.0.40", 80, 5, timeout=1.0)} == {POD_GATEWAY4}



def test_service_cidr_objects_add_to_the_dropped_ranges(lab, svc, leaving):
    """A ServiceCIDR in the input counts as much as --service-cidr: an address in it that no
    Service holds is dropped (kube-proxy takes its service CIDRs from these objects)."""
    service_cidr = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "extra"},
                    "spec": {"cidrs": ["10.96.1.0/24"]}}
    objects = dual_web([lab.pods["pod-a"], lab.pods["pod-b"]])
    svc.apply(objects, "--service-cidr", "10.96.0.0/24")
    assert leaving("10.96.1.50") == 0  # counting from here
    assert errors(lab.requests("pod-c", "10.96.1.50", 80, 1, timeout=0.5)) == ["timeout"]
    before = leaving("10.96.1.50")
    assert before > 0  # not a service CIDR yet: routed on
    svc.apply([*objects, service_cidr], "--service-cidr", "10.96.0.0/24")
    assert errors(lab.requests("pod-c", "10.96.1.50", 80, 2, timeout=0.5)) == ["timeout"] * 2
    assert leaving("10.96.1.50") == before  # dropped by the node


def test_the_node_reaches_a_load_balancer_ip_it_holds_when_the_ranges_let_it_in(lab, svc):
    """kube-proxy's allowFromNode: when loadBalancerSourceRanges hold the node's IP, the node may
    reach the LoadBalancer IP, also when it holds that IP itself (a VIP-style load balancer):
    such a connection comes from the VIP. The node's IP comes from its Node object."""
    vip = "203.0.113.40"
    lab.node_exec(["ip", "addr", "add", f"{vip}/32", "dev", "lo"])
    try:
        objects = [
            service("lb", [port(80, node_port=30040)], selector={"app": "lb"}, type="LoadBalancer", cluster_ip="10.96.0.45",
                    loadBalancerSourceRanges=["192.168.50.0/24"], status={"loadBalancer": {"ingress": [{"ip": vip}]}}),
            pod(lab.pods["pod-a"], {"app": "lb"}),
        ]
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
                "status": {"addresses": [{"type": "InternalIP", "address": NODE_IP4}]}}
        svc.apply(objects)  # no Node object: svcctl does not know the node's IP
        assert errors(lab.requests("node", vip, 80, 2, timeout=0.5)) == ["timeout"] * 2
        assert errors(lab.requests("client", vip, 80, 2, timeout=1.0)) == [None] * 2  # 192.168.50.2: in range
        svc.apply([*objects, node])
        results = lab.requests("node", vip, 80, 5, timeout=1.0)
        assert errors(results) == [None] * 5 and set(pods_seen(results)) == {"pod-a"}
        # The exception is for the VIPs as sources, not for everyone.
        assert errors(lab.requests("client", vip, 80, 2, timeout=1.0)) == [None] * 2
    finally:
        lab.node_exec(["ip", "addr", "del", f"{vip}/32", "dev", "lo"])
