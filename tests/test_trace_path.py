"""``svcctl trace``'s packet path (svcctl/trace/path.py) on small plans, as packet-flow tables: a
source, a destination and a protocol in; the verdict, each endpoint's exact probability and the
masquerade decision out. The cases follow kube-proxy's packet-flow tests (pkg/proxy/nftables
proxier_test.go: TestInternalExternalMasquerade, TestLoadBalancer, TestNodePorts, ...) where
svcctl's rules behave as kube-proxy's; docs/nft-layout.md §3 is the specification."""

from __future__ import annotations

from fractions import Fraction
from ipaddress import ip_network

import pytest

from conftest import dedent
from svcctl.model import Protocol
from svcctl.options import build_options
from svcctl.pipeline import read_services
from svcctl.plan import plan as make_plan
from svcctl.plan.model import Endpoint, EndpointGroup, Frontend, Pick, Plan, PortRef
from svcctl.problems import InvalidInput
from svcctl.load import Inputs, Source
from svcctl.trace import Trace, Verdict, packet, trace

POD, NODE, EXTERNAL = "10.0.0.2", "node:192.168.0.2", "203.0.113.2"

# kube-proxy's TestInternalExternalMasquerade: svc1 with both policies Cluster, svc2 with
# externalTrafficPolicy Local, svc3 with internalTrafficPolicy Local; each has one endpoint on
# this node (10.180.0.x) and one on another (10.180.1.x), a LoadBalancer IP and a NodePort.
MASQUERADE = """
apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: ns}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.41
  ports: [{name: p80, port: 80, nodePort: 30001}]
status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc1, namespace: ns}
subsets: [{addresses: [{ip: 10.180.0.1, nodeName: node-1}, {ip: 10.180.1.1, nodeName: node-2}], ports: [{name: p80, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc2, namespace: ns}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.42
  externalTrafficPolicy: Local
  ports: [{name: p80, port: 80, nodePort: 30002}]
status: {loadBalancer: {ingress: [{ip: 5.6.7.8}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc2, namespace: ns}
subsets: [{addresses: [{ip: 10.180.0.2, nodeName: node-1}, {ip: 10.180.1.2, nodeName: node-2}], ports: [{name: p80, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: svc3, namespace: ns}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.43
  internalTrafficPolicy: Local
  ports: [{name: p80, port: 80, nodePort: 30003}]
status: {loadBalancer: {ingress: [{ip: 9.10.11.12}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc3, namespace: ns}
subsets: [{addresses: [{ip: 10.180.0.3, nodeName: node-1}, {ip: 10.180.1.3, nodeName: node-2}], ports: [{name: p80, port: 80}]}]
"""

BOTH = {"svc1": ("10.180.0.1:80", "10.180.1.1:80"), "svc2": ("10.180.0.2:80", "10.180.1.2:80"), "svc3": ("10.180.0.3:80", "10.180.1.3:80")}
CLUSTER_IP = {"svc1": "172.30.0.41:80", "svc2": "172.30.0.42:80", "svc3": "172.30.0.43:80"}
NODE_PORT = {"svc1": "192.168.0.2:30001", "svc2": "192.168.0.2:30002", "svc3": "192.168.0.2:30003"}
LB = {"svc1": "1.2.3.4:80", "svc2": "5.6.7.8:80", "svc3": "9.10.11.12:80"}


def plan_of(manifest: str, **settings: object) -> Plan:
    flags = {"node-name": "node-1", "service-cidr": ["172.30.0.0/16", "fd00:172:30::/112"], **settings}
    options = build_options({k.replace("_", "-"): v for k, v in flags.items()})
    _, services = read_services(Inputs([Source("m.yaml", dedent(manifest), False)]), options)
    return make_plan(services, options)


def follow(p: Plan, to: str, source: str | None = None, protocol: Protocol = Protocol.TCP) -> Trace:
    return trace(p, packet(to, source, protocol, [ip_network(c) for f in p.families for c in f.cluster_cidrs]))


def flow(p: Plan, to: str, source: str | None = None, protocol: Protocol = Protocol.TCP) -> tuple[str, tuple[str, ...], bool]:
    """(verdict, endpoints, masquerade) as kube-proxy's packet-flow tests state them."""
    t = follow(p, to, source, protocol)
    return str(t.verdict), tuple(sorted(c.address for c in t.endpoints)), t.masquerade


def dnat(*endpoints: str, masq: bool) -> tuple[str, tuple[str, ...], bool]:
    return "dnat", tuple(sorted(endpoints)), masq


@pytest.fixture(scope="module")
def masquerade_plan() -> Plan:
    return plan_of(MASQUERADE, cluster_cidr=["10.0.0.0/8"])


# ---- TestInternalExternalMasquerade ---------------------------------------------------------

FLOWS = [
    # (from, to, svc -> expected)
    ("pod to ClusterIP", POD, CLUSTER_IP, {"svc1": dnat(*BOTH["svc1"], masq=False), "svc2": dnat(*BOTH["svc2"], masq=False), "svc3": dnat("10.180.0.3:80", masq=False)}),
    ("pod to NodePort", POD, NODE_PORT, {"svc1": dnat(*BOTH["svc1"], masq=True), "svc2": dnat(*BOTH["svc2"], masq=False), "svc3": dnat(*BOTH["svc3"], masq=True)}),
    ("pod to LB", POD, LB, {"svc1": dnat(*BOTH["svc1"], masq=True), "svc2": dnat(*BOTH["svc2"], masq=False), "svc3": dnat(*BOTH["svc3"], masq=True)}),
    ("node to ClusterIP", NODE, CLUSTER_IP, {"svc1": dnat(*BOTH["svc1"], masq=True), "svc2": dnat(*BOTH["svc2"], masq=True), "svc3": dnat("10.180.0.3:80", masq=True)}),
    ("node to NodePort", NODE, NODE_PORT, {s: dnat(*BOTH[s], masq=True) for s in BOTH}),
    ("node to LB", NODE, LB, {s: dnat(*BOTH[s], masq=True) for s in BOTH}),
    ("external to ClusterIP", EXTERNAL, CLUSTER_IP, {"svc1": dnat(*BOTH["svc1"], masq=True), "svc2": dnat(*BOTH["svc2"], masq=True), "svc3": dnat("10.180.0.3:80", masq=True)}),
    ("external to NodePort", EXTERNAL, NODE_PORT, {"svc1": dnat(*BOTH["svc1"], masq=True), "svc2": dnat("10.180.0.2:80", masq=False), "svc3": dnat(*BOTH["svc3"], masq=True)}),
    ("external to LB", EXTERNAL, LB, {"svc1": dnat(*BOTH["svc1"], masq=True), "svc2": dnat("10.180.0.2:80", masq=False), "svc3": dnat(*BOTH["svc3"], masq=True)}),
]


@pytest.mark.parametrize("name, source, destinations, expected", FLOWS, ids=[f[0] for f in FLOWS])
def test_internal_external_masquerade(masquerade_plan: Plan, name: str, source: str, destinations: dict[str, str], expected: dict[str, tuple]) -> None:
    for svc, want in expected.items():
        assert flow(masquerade_plan, destinations[svc], source) == want, f"{name}: {svc}"


def test_without_a_cluster_cidr_nothing_is_masqueraded_by_source() -> None:
    # kube-proxy's "no LocalTrafficDetector" override: ClusterIP traffic keeps its source, and
    # pods cannot be told from outside clients, so pods reach svc2's local endpoint only.
    p = plan_of(MASQUERADE)
    for source in (NODE, EXTERNAL):
        assert flow(p, CLUSTER_IP["svc1"], source) == dnat(*BOTH["svc1"], masq=False)
    assert flow(p, NODE_PORT["svc2"], POD) == dnat("10.180.0.2:80", masq=False)
    assert flow(p, LB["svc2"], POD) == dnat("10.180.0.2:80", masq=False)
    assert any("pods cannot be told from other clients" in r for r in follow(p, LB["svc2"], POD).reasons)


@pytest.mark.parametrize("name, source, destinations, expected", FLOWS, ids=[f[0] for f in FLOWS])
def test_masquerade_all_changes_only_clusterip_traffic_from_pods(name: str, source: str, destinations: dict[str, str], expected: dict[str, tuple]) -> None:
    # kube-proxy's masqueradeAll override: pod -> ClusterIP is masqueraded, nothing else changes
    # (external traffic to an externalTrafficPolicy Local Service keeps its source).
    p = plan_of(MASQUERADE, cluster_cidr=["10.0.0.0/8"], masquerade_all=True)
    for svc, (verdict, endpoints, masq) in expected.items():
        want = (verdict, endpoints, masq or destinations is CLUSTER_IP)
        assert flow(p, destinations[svc], source) == want, f"{name}: {svc}"
    assert "nat prerouting: --masquerade-all: marked for masquerade" in follow(p, CLUSTER_IP["svc1"], POD).reasons


def test_probabilities_are_exact_and_add_up(masquerade_plan: Plan) -> None:
    t = follow(masquerade_plan, CLUSTER_IP["svc1"], POD)
    assert [(c.address, c.probability) for c in t.endpoints] == [("10.180.0.1:80", Fraction(1, 2)), ("10.180.1.1:80", Fraction(1, 2))]
    assert sum(c.probability for c in t.endpoints) == 1
    assert (t.port, t.frontend) == (PortRef("ns", "svc1", "p80", 80, Protocol.TCP), Frontend.CLUSTER_IP)


def test_paths(masquerade_plan: Plan) -> None:
    assert follow(masquerade_plan, NODE_PORT["svc1"]).frontend is Frontend.NODE_PORT
    assert follow(masquerade_plan, LB["svc1"]).frontend is Frontend.LOAD_BALANCER_IP
    t = follow(masquerade_plan, NODE_PORT["svc1"])
    assert t.node_address and not follow(masquerade_plan, LB["svc1"]).node_address


def test_reasons_say_every_decision_in_order(masquerade_plan: Plan) -> None:
    t = follow(masquerade_plan, LB["svc2"], EXTERNAL)
    assert t.reasons == (
        "source: 203.0.113.2, a client outside the cluster (outside --cluster-cidr 10.0.0.0/8)",
        "destination: 5.6.7.8 tcp/80 is a LoadBalancer IP of Service port ns/svc2:p80",
        "nat prerouting: externalTrafficPolicy Local: this node's endpoints only, not marked for masquerade",
        "nat prerouting: DNAT to one of this node's endpoints: 1 endpoint(s)",
        "nat postrouting: not marked: the endpoint sees the source address 203.0.113.2",
    )
    node = follow(masquerade_plan, LB["svc2"], NODE)
    assert "nat output: externalTrafficPolicy Local, but the traffic is this node's own: all endpoints, marked for masquerade" in node.reasons
    assert node.reasons[0] == "source: this node (192.168.0.2): its own traffic takes the output hooks"


# ---- loadBalancerSourceRanges (TestLoadBalancer) -----------------------------------------------

RANGES = """
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: ns}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.41
  loadBalancerSourceRanges: [192.168.0.0/24, 203.0.113.0/25]
  ports: [{name: p80, port: 80, nodePort: 30001}]
status: {loadBalancer: {ingress: [{ip: 1.2.3.4}, {ip: 5.6.7.8}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {name: lb, namespace: ns}
subsets: [{addresses: [{ip: 10.180.0.1, nodeName: node-2}], ports: [{name: p80, port: 80}]}]
"""


@pytest.mark.parametrize("source, to, expected", [
    (POD, "172.30.0.41:80", dnat("10.180.0.1:80", masq=False)),
    ("203.0.113.2", "192.168.0.2:30001", dnat("10.180.0.1:80", masq=True)),
    ("203.0.113.130", "192.168.0.2:30001", dnat("10.180.0.1:80", masq=True)),  # NodePorts ignore the ranges
    ("203.0.113.2", "1.2.3.4:80", dnat("10.180.0.1:80", masq=True)),
    ("203.0.113.2", "5.6.7.8:80", dnat("10.180.0.1:80", masq=True)),
    ("203.0.113.130", "1.2.3.4:80", ("drop", (), False)),
    ("203.0.113.130", "5.6.7.8:80", ("drop", (), False)),
    (POD, "1.2.3.4:80", ("drop", (), False)),  # pods are subject to the ranges
    (NODE, "1.2.3.4:80", dnat("10.180.0.1:80", masq=True)),  # the node's address is in 192.168.0.0/24
    ("node", "1.2.3.4:80", ("drop", (), False)),  # the default node address is in no range
])
def test_load_balancer_source_ranges(source: str, to: str, expected: tuple) -> None:
    assert flow(plan_of(RANGES, cluster_cidr=["10.0.0.0/8"]), to, source) == expected


def test_a_refused_source_is_dropped_before_dnat() -> None:
    t = follow(plan_of(RANGES, cluster_cidr=["10.0.0.0/8"]), "1.2.3.4:80", "203.0.113.130")
    assert t.reasons[-1] == "prerouting, before DNAT: loadBalancerSourceRanges of ns/lb allow 192.168.0.0/24, 203.0.113.0/25; 203.0.113.130 is in none of them: dropped"
    node = follow(plan_of(RANGES, cluster_cidr=["10.0.0.0/8"]), "1.2.3.4:80", "node")
    assert node.reasons[-1].startswith("output, before DNAT: ")


# ---- NodePorts (TestNodePorts) -----------------------------------------------------------------

NODEPORT = """
apiVersion: v1
kind: Service
metadata: {name: np, namespace: ns}
spec:
  type: NodePort
  clusterIP: 172.30.0.41
  ipFamilyPolicy: PreferDualStack
  clusterIPs: [172.30.0.41, "fd00:172:30::41"]
  ports: [{name: p80, port: 80, nodePort: 30001}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: np-4, namespace: ns, labels: {kubernetes.io/service-name: np}}
addressType: IPv4
endpoints:
- {addresses: [10.180.0.1], nodeName: node-1}
- {addresses: [10.180.1.1], nodeName: node-2}
ports: [{name: p80, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: np-6, namespace: ns, labels: {kubernetes.io/service-name: np}}
addressType: IPv6
endpoints:
- {addresses: ["fd00:10:180::1"], nodeName: node-1}
ports: [{name: p80, port: 80}]
"""


def test_node_ports_answer_on_every_local_address_but_loopback() -> None:
    p = plan_of(NODEPORT, cluster_cidr=["10.0.0.0/8"])
    both = dnat("10.180.0.1:80", "10.180.1.1:80", masq=True)
    assert flow(p, "192.168.0.2:30001") == both
    assert flow(p, "192.168.1.2:30001", NODE) == both  # svcctl: every local address (kube-proxy: the primary IP)
    assert flow(p, "[2001:db8::1]:30001") == dnat("[fd00:10:180::1]:80", masq=True)
    for loopback in ("127.0.0.1:30001", "[::1]:30001"):
        t = follow(p, loopback, "node")
        assert t.verdict is Verdict.UNTOUCHED and "a loopback one: NodePorts never answer there" in t.reasons[1]
    assert flow(p, "192.168.0.2:30009") == ("untouched", (), False)


def test_a_loopback_source_is_dnated_but_never_masqueraded() -> None:
    """IPv4 from 127.0.0.0/8: the rules DNAT it, then the kernel's second route lookup drops it
    before nat postrouting (route_localnet is 0). IPv6 from ::1 leaves the node and is masqueraded."""
    p = plan_of(NODEPORT, cluster_cidr=["10.0.0.0/8", "fd00:10::/32"])
    assert flow(p, "192.168.0.2:30001", "node:127.0.0.1") == dnat("10.180.0.1:80", "10.180.1.1:80", masq=False)
    t = follow(p, "192.168.0.2:30001", "node:127.0.0.1")
    assert t.reasons[-1].startswith("routing: after DNAT the kernel routes no IPv4 packet from a loopback address off the node")
    assert flow(p, "[2001:db8::1]:30001", "node:::1") == dnat("[fd00:10:180::1]:80", masq=True)


def test_nodeport_addresses_restrict_node_ports_per_family() -> None:
    p = plan_of(NODEPORT, nodeport_addresses=["192.168.0.0/24"])
    assert flow(p, "192.168.0.2:30001")[0] == "dnat"
    outside = follow(p, "192.168.1.2:30001")
    assert outside.verdict is Verdict.UNTOUCHED
    assert "outside --nodeport-addresses 192.168.0.0/24: NodePorts do not answer there" in outside.reasons[1]
    assert flow(p, "[2001:db8::1]:30001")[0] == "dnat"  # no IPv6 range given: every IPv6 address


# ---- endpoints: none, none local, terminating, affinity, hairpin --------------------------------

POLICIES = """
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: ns}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.41
  externalIPs: [192.168.99.11]
  ports: [{name: web, port: 80, nodePort: 30001}, {name: dns, port: 53, protocol: UDP, nodePort: 30001}]
status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}
---
apiVersion: v1
kind: Service
metadata: {name: itp, namespace: ns}
spec: {clusterIP: 172.30.0.42, internalTrafficPolicy: Local, ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: itp, namespace: ns}
subsets: [{addresses: [{ip: 10.180.1.1, nodeName: node-2}], ports: [{port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: etp, namespace: ns}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.43
  externalTrafficPolicy: Local
  ports: [{port: 80, nodePort: 30003}]
status: {loadBalancer: {ingress: [{ip: 1.2.3.5}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {name: etp, namespace: ns}
subsets: [{addresses: [{ip: 10.180.1.2, nodeName: node-2}], ports: [{port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: term, namespace: ns}
spec:
  clusterIP: 172.30.0.44
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: term-1, namespace: ns, labels: {kubernetes.io/service-name: term}}
addressType: IPv4
endpoints:
- {addresses: [10.180.0.1], nodeName: node-1, conditions: {ready: false, serving: true, terminating: true}}
- {addresses: [10.180.0.2], nodeName: node-1, conditions: {ready: false, serving: false, terminating: true}}
- {addresses: [10.180.0.3], nodeName: node-1, conditions: {ready: false, serving: true, terminating: true}}
ports: [{port: 80}]
"""


@pytest.fixture(scope="module")
def policies() -> Plan:
    return plan_of(POLICIES, cluster_cidr=["10.0.0.0/8"])


@pytest.mark.parametrize("source", [POD, EXTERNAL, NODE])
@pytest.mark.parametrize("to", ["172.30.0.41:80", "192.168.99.11:80", "1.2.3.4:80", "192.168.0.2:30001"])
def test_no_endpoints_rejects_every_path(policies: Plan, source: str, to: str) -> None:
    t = follow(policies, to, source)
    assert (t.verdict, t.endpoints, t.masquerade) == (Verdict.REJECT, (), False)
    assert "has no usable endpoint: rejected, the client is refused at once" in t.reasons[-1]
    assert t.reasons[-1].startswith("filter output" if source == NODE else "filter input" if to.endswith("30001") else "filter forward")


def test_udp_is_its_own_port(policies: Plan) -> None:
    t = follow(policies, "172.30.0.41:53", POD, Protocol.UDP)
    assert (t.verdict, t.port and t.port.port_name) == (Verdict.REJECT, "dns")
    assert t.reasons[-1] == "filter forward: Service port ns/empty:dns has no usable endpoint: rejected, the client is refused at once"


def test_internal_traffic_policy_local_without_local_endpoints_drops(policies: Plan) -> None:
    t = follow(policies, "172.30.0.42:80", POD)
    assert t.verdict is Verdict.DROP
    assert t.reasons[-1] == "filter forward: internalTrafficPolicy Local, and no usable endpoint of ns/itp:80 is on this node: dropped"


def test_external_traffic_policy_local_without_local_endpoints(policies: Plan) -> None:
    assert flow(policies, "1.2.3.5:80", EXTERNAL) == ("drop", (), False)
    assert flow(policies, "192.168.0.2:30003", EXTERNAL) == ("drop", (), False)
    assert flow(policies, "1.2.3.5:80", POD) == dnat("10.180.1.2:80", masq=False)  # pods still reach every endpoint
    assert flow(policies, "192.168.0.2:30003", NODE) == dnat("10.180.1.2:80", masq=True)


def test_terminating_endpoints_stand_in_and_affinity_is_said(policies: Plan) -> None:
    t = follow(policies, "172.30.0.44:80", POD)
    assert [(c.address, c.probability) for c in t.endpoints] == [("10.180.0.1:80", Fraction(1, 2)), ("10.180.0.3:80", Fraction(1, 2))]
    assert t.affinity_timeout == 600
    assert "nat prerouting: DNAT to one of all usable endpoints (none is ready: the serving, terminating ones stand in): 2 endpoint(s), each as likely" in t.reasons
    assert any(r.startswith("nat prerouting: sessionAffinity ClientIP: a client that connected within 600s") for r in t.reasons)


def test_hairpin_is_masqueraded_only_when_the_pod_reaches_itself(policies: Plan) -> None:
    t = follow(policies, "172.30.0.44:80", "10.180.0.1")
    assert [(c.address, c.masquerade) for c in t.endpoints] == [("10.180.0.1:80", True), ("10.180.0.3:80", False)]
    assert not t.masquerade
    assert "nat postrouting: hairpin: when 10.180.0.1:80 is chosen, the pod reaches itself: masqueraded, or it would drop a reply from its own address" in t.reasons
    assert t.reasons[-1] == "nat postrouting: otherwise not marked: the endpoint sees the source address 10.180.0.1"


# ---- addresses and ports no Service holds (TestClusterIPGeneral) -------------------------------


@pytest.mark.parametrize("source", [POD, EXTERNAL, NODE])
def test_a_cluster_ip_on_a_port_no_service_port_holds_is_rejected(policies: Plan, source: str) -> None:
    for to, protocol in (("172.30.0.41:8080", Protocol.TCP), ("172.30.0.42:80", Protocol.UDP)):  # wrong port, wrong protocol
        t = follow(policies, to, source, protocol)
        assert (t.verdict, t.port, t.frontend, t.node_address) == (Verdict.REJECT, None, None, False)
        address = to.split(":")[0]
        where = "filter output" if source == NODE else "filter forward"
        assert t.reasons[1] == f"destination: {address} is a Service address (ns/{'empty' if address.endswith('41') else 'itp'}), but no Service port there is {protocol.value.lower()}/{to.split(':')[1]}"
        assert t.reasons[-1] == f"{where}: {address} is a ClusterIP, but not of a {protocol.value.lower()}/{to.split(':')[1]} Service port: rejected, the client is refused at once"


def test_an_unallocated_address_of_the_service_cidrs_is_dropped(policies: Plan) -> None:
    t = follow(policies, "172.30.0.50:80", POD)
    assert (t.verdict, t.node_address) == (Verdict.DROP, False)
    assert t.reasons[1:] == (
        "destination: 172.30.0.50 is no Service's address, but inside the service CIDR 172.30.0.0/16",
        "filter forward: no Service holds 172.30.0.50 in the service CIDR 172.30.0.0/16: dropped",
    )


def test_external_addresses_on_other_ports_are_left_alone(policies: Plan) -> None:
    for to in ("192.168.99.11:8080", "1.2.3.4:8080"):  # externalIP, LoadBalancer IP
        t = follow(policies, to, EXTERNAL)
        assert t.verdict is Verdict.UNTOUCHED
        assert t.reasons[-1] == "verdict: no rule of svcctl's changes the packet: it goes where routing sends it"


def test_ipv6() -> None:
    p = plan_of(NODEPORT, cluster_cidr=["10.0.0.0/8", "fd00:10::/32"])
    t = follow(p, "[fd00:172:30::41]:80", "fd00:10:180::9")
    assert (t.verdict, [c.address for c in t.endpoints], t.masquerade) == (Verdict.DNAT, ["[fd00:10:180::1]:80"], False)
    assert t.packet.to == "[fd00:172:30::41]:80"
    assert follow(p, "[fd00:172:30::41]:80").packet.source == "2001:db8::1"


# ---- the cascade's arithmetic ------------------------------------------------------------------


def test_probabilities_follow_the_cascade_exactly() -> None:
    ref = PortRef("ns", "s", "", 80, Protocol.TCP)
    e = [Endpoint(f"10.0.0.{i}", 80) for i in range(4)]
    uniform = EndpointGroup(ref, False, (Pick(e[0], 3), Pick(e[1], 2), Pick(e[2], None)), None)
    assert [p for _, p in uniform.probabilities()] == [Fraction(1, 3)] * 3
    # A skewed cascade (every rule "mod 3") and an endpoint listed twice.
    skewed = EndpointGroup(ref, False, (Pick(e[0], 3), Pick(e[1], 3), Pick(e[0], 3), Pick(e[3], None)), None)
    assert dict(skewed.probabilities()) == {e[0]: Fraction(1, 3) + Fraction(4, 27), e[1]: Fraction(2, 9), e[3]: Fraction(8, 27)}
    assert sum(p for _, p in skewed.probabilities()) == 1


# ---- the packet from the command line ----------------------------------------------------------


@pytest.mark.parametrize("to, source, message", [
    ("10.96.0.10", None, 'command line: --to: "10.96.0.10" is not an address and port (e.g. 10.96.0.10:80 or [fd00:10:96::10]:80)'),
    ("fd00::1:80", None, 'command line: --to: "fd00::1:80" is not an address and port (e.g. 10.96.0.10:80 or [fd00:10:96::10]:80)'),
    ("[10.0.0.1]:80", None, 'command line: --to: "[10.0.0.1]:80" is not an address and port (e.g. 10.96.0.10:80 or [fd00:10:96::10]:80)'),
    ("10.96.0.999:80", None, 'command line: --to: "10.96.0.999:80" is not an address and port (e.g. 10.96.0.10:80 or [fd00:10:96::10]:80)'),
    ("10.96.0.10:0", None, 'command line: --to: "10.96.0.10:0": the port must be between 1 and 65535'),
    ("10.96.0.10:65536", None, 'command line: --to: "10.96.0.10:65536": the port must be between 1 and 65535'),
    ("10.96.0.10:８０", None, 'command line: --to: "10.96.0.10:８０" is not an address and port (e.g. 10.96.0.10:80 or [fd00:10:96::10]:80)'),
    ("0.0.0.0:80", None, 'command line: --to: "0.0.0.0:80": a new connection goes to one host, not to an unspecified address'),
    ("[ff02::1]:80", None, 'command line: --to: "[ff02::1]:80": a new connection goes to one host, not to a multicast address'),
    ("10.96.0.10:80", "224.0.0.1", "command line: --from: 224.0.0.1 is no address a connection comes from"),
    ("10.96.0.10:80", "node:0.0.0.0", "command line: --from: 0.0.0.0 is no address a connection comes from"),
    ("10.96.0.10:80", "pod-a", 'command line: --from: "pod-a" is not an IP address, "node" or "node:IP"'),
    ("10.96.0.10:80", "node:x", 'command line: --from: "node:x" is not an IP address, "node" or "node:IP"'),
    ("10.96.0.10:80", "fd00::1", "command line: --from: fd00::1 is IPv6, but --to 10.96.0.10:80 is IPv4"),
    ("10.96.0.10:80", "node:fd00::1", "command line: --from: node:fd00::1 is IPv6, but --to 10.96.0.10:80 is IPv4"),
    ("[fd00::1]:80", "::1", "command line: --from: ::1 is a loopback address: only the node sends from it (--from node:::1)"),
    ("10.96.0.10:80", "127.0.0.2", "command line: --from: 127.0.0.2 is a loopback address: only the node sends from it (--from node:127.0.0.2)"),
])
def test_bad_packets_are_one_line_problems(to: str, source: str | None, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        packet(to, source, Protocol.TCP, ())
    assert err.value.lines() == [message]


def test_both_options_bad_are_two_problems() -> None:
    with pytest.raises(InvalidInput) as err:
        packet("x", "y", Protocol.TCP, ())
    assert len(err.value.lines()) == 2


def test_default_sources() -> None:
    p = packet("[fd00:10:96::1]:80", None, Protocol.UDP, ())
    assert (p.source, p.local, p.assumed, p.port, p.to) == ("2001:db8::1", False, True, 80, "[fd00:10:96::1]:80")
    assert packet("10.96.0.1:80", "node", Protocol.TCP, ()).source == "192.0.2.1"
    assert packet("10.96.0.1:80", "node:10.244.0.1", Protocol.TCP, ()).source == "10.244.0.1"
    assert packet("[fd00::1]:80", "FD00:0::5", Protocol.TCP, ()).source == "fd00::5"  # canonical form
    with pytest.raises(InvalidInput) as err:
        packet("10.96.0.1:80", None, Protocol.TCP, [ip_network("203.0.113.0/24")])
    assert err.value.lines() == ["command line: --from: the default source 203.0.113.1 lies inside --cluster-cidr 203.0.113.0/24: give --from"]
