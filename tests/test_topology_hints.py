"""Topology-aware routing (svcctl/topology.py): kube-proxy's endpoint categorization, case by case
as its own tests state it (pkg/proxy/topology_test.go, TestCategorizeEndpoints, transcribed in
/work/notes/kube-proxy-topology.md §5), through ``categorize`` and through the plan that every
back end, ``show`` and ``trace`` read; the EndpointSlice controller's hints for
trafficDistribution, where svcctl makes the endpoints; this node's zone; ``show`` and ``trace``."""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest

from conftest import resolved
from test_resolve import dump, endpoint_slice, endpoints_object, pod, service
from svcctl.model import Protocol, ServiceType, TrafficPolicy
from svcctl.options import Options, build_options
from svcctl.sources import read_config
from svcctl.plan import Action, port_ref
from svcctl.plan import plan as make_plan
from svcctl.plan.endpoints import choose
from svcctl.resolve import Backend, EndpointSource, ResolvedPort, ResolvedService
from svcctl.topology import Mode, NodeTopology, categorize, uses

# ---- the cases of kube-proxy's TestCategorizeEndpoints ----------------------------------------

# Endpoint states, as the cases name them.
READY = (True, True, False)  # ready (and so serving), not terminating
UNREADY = (False, True, False)  # serving, but not ready, not terminating
TERMINATING = (False, True, True)  # serving while terminating
GONE = (False, False, False)  # neither ready nor serving


def ep(n: int, state: tuple[bool, bool, bool] = READY, local: bool = False, zones: str = "", nodes: str = "") -> Backend:
    """Endpoint 10.0.0.n:80; ``zones`` and ``nodes``: its hints, comma-separated."""
    ready, serving, terminating = state
    return Backend(
        f"10.0.0.{n}", 80, "this-node" if local else f"node-{n}", ready, serving, terminating, "", local,
        zone_hints=tuple(zones.split(",")) if zones else (), node_hints=tuple(nodes.split(",")) if nodes else (),
    )


class Policies(NamedTuple):
    itp_local: bool = False
    etp_local: bool = False
    external: bool = False  # a NodePort (or externalIPs, LoadBalancer IPs)


PLAIN = Policies()
ITP_LOCAL = Policies(itp_local=True)
ETP_LOCAL_INTERNAL = Policies(etp_local=True)  # eTP Local, but nothing external to apply to
NP_ITP_LOCAL = Policies(itp_local=True, external=True)
NP_ETP_LOCAL = Policies(etp_local=True, external=True)
NP_BOTH_LOCAL = Policies(itp_local=True, etp_local=True, external=True)

NO_ZONE = NodeTopology("", "")
ZONE_A = NodeTopology("", "zone-a")


class Case(NamedTuple):
    what: str
    node: NodeTopology
    policies: Policies
    endpoints: list[Backend]
    cluster: set[int] | None  # last octets; None: the Service uses no cluster-wide endpoints
    local: set[int] | None  # None: it uses no local ones


def same_four(nodes: bool) -> list[Backend]:
    """Four ready endpoints, two hinted for zone-a, one each for zone-b and zone-c; with
    ``nodes`` also hinted for node-1, -2, -3, -4 in turn."""
    return [
        ep(3, zones="zone-a", nodes="node-1" if nodes else ""),
        ep(4, zones="zone-b", nodes="node-2" if nodes else ""),
        ep(5, zones="zone-c", nodes="node-3" if nodes else ""),
        ep(6, zones="zone-a", nodes="node-4" if nodes else ""),
    ]


def mixed_locality() -> list[Backend]:
    return [ep(3, local=True, zones="zone-a"), ep(4, local=True, zones="zone-b"), ep(5, zones="zone-c"), ep(6, zones="zone-a")]


CASES = [
    # 1-14: hints
    Case("every endpoint hinted, some for this node's zone: only those", ZONE_A, PLAIN, same_four(False), {3, 6}, None),
    Case("externalTrafficPolicy Local: hints narrow the cluster-wide endpoints, never the local ones", ZONE_A, NP_ETP_LOCAL, mixed_locality(), {3, 6}, {3, 4}),
    Case("internalTrafficPolicy Local: hints narrow the cluster-wide endpoints, never the local ones", ZONE_A, NP_ITP_LOCAL, mixed_locality(), {3, 6}, {3, 4}),
    Case("a node without labels: no zone, no filter", NO_ZONE, PLAIN, [ep(3, zones="zone-a")], {3}, None),
    Case("a node whose zone label is empty: no filter", NodeTopology("", ""), PLAIN, [ep(3, zones="zone-a")], {3}, None),
    Case("no endpoint hinted for this node's zone: no filter", NodeTopology("", "zone-b"), PLAIN, [ep(3, zones="zone-a"), ep(5, zones="zone-c")], {3, 5}, None),
    Case("an endpoint that is not ready counts for nothing", ZONE_A, PLAIN,
         [ep(3, zones="zone-a"), ep(4, zones="zone-b"), ep(5, zones="zone-c"), ep(6, UNREADY, zones="zone-a")], {3}, None),
    Case("only endpoints that are not ready are hinted for this zone: no filter", ZONE_A, PLAIN,
         [ep(3, UNREADY, zones="zone-a"), ep(4, zones="zone-b"), ep(5, zones="zone-c"), ep(6, UNREADY, zones="zone-a")], {4, 5}, None),
    Case("one ready endpoint without hints: no filter", ZONE_A, PLAIN,
         [ep(3, zones="zone-a"), ep(4, zones="zone-b"), ep(5), ep(6, zones="zone-a")], {3, 4, 5, 6}, None),
    Case("endpoints hinted for several zones", NodeTopology("", "zone-c"), PLAIN,
         [ep(3, zones="zone-a,zone-b,zone-c"), ep(4, zones="zone-b,zone-c"), ep(5, zones="zone-b,zone-d"), ep(6, zones="zone-c")], {3, 4, 6}, None),
    # (upstream's case with the PreferSameTrafficDistribution gate off, where node hints are
    # ignored, has no counterpart: the gate is GA and locked on since 1.35, as svcctl behaves)
    Case("node hints, some for this node: only those", NodeTopology("node-1", "zone-a"), PLAIN, same_four(True), {3}, None),
    Case("node hints, but one ready endpoint has none: no filter at all", NodeTopology("node-1", "zone-a"), PLAIN,
         [ep(3, zones="zone-a", nodes="node-1"), ep(4), ep(5, zones="zone-c", nodes="node-3"), ep(6, zones="zone-a", nodes="node-4")], {3, 4, 5, 6}, None),
    Case("node hints, none for this node: the zone hints decide", NodeTopology("node-0", "zone-a"), PLAIN, same_four(True), {3, 6}, None),
    # 15-34: locality, readiness and traffic policies
    Case("hints and locality disagree: both sets, each by its own rule", ZONE_A, NP_ITP_LOCAL,
         [ep(0, local=True, zones="zone-a"), ep(1, local=True, zones="zone-b"), ep(2, zones="zone-a"), ep(3, zones="zone-b")], {0, 2}, {0, 1}),
    Case("internalTrafficPolicy Local, no endpoints", NO_ZONE, ITP_LOCAL, [], None, set()),
    Case("internalTrafficPolicy Local, every endpoint elsewhere", NO_ZONE, ITP_LOCAL, [ep(0), ep(1)], None, set()),
    Case("internalTrafficPolicy Local, every endpoint here", NO_ZONE, ITP_LOCAL, [ep(0, local=True), ep(1, local=True)], None, {0, 1}),
    Case("internalTrafficPolicy Local, one endpoint here", NO_ZONE, ITP_LOCAL, [ep(0, local=True), ep(1)], None, {0}),
    Case("no endpoint ready", NO_ZONE, PLAIN, [ep(0, UNREADY), ep(1, UNREADY)], set(), None),
    Case("one endpoint ready", NO_ZONE, PLAIN, [ep(0, UNREADY), ep(1)], {1}, None),
    Case("every endpoint serving and terminating: they stand in", NO_ZONE, PLAIN, [ep(0, TERMINATING), ep(1, TERMINATING)], {0, 1}, None),
    Case("internal Local, external Cluster, one endpoint here", NO_ZONE, NP_ITP_LOCAL, [ep(0, local=True), ep(1)], {0, 1}, {0}),
    Case("internal Cluster, external Local, one endpoint here", NO_ZONE, NP_ETP_LOCAL, [ep(0, local=True), ep(1)], {0, 1}, {0}),
    Case("both Local, one endpoint here", NO_ZONE, NP_BOTH_LOCAL, [ep(0, local=True), ep(1)], {0, 1}, {0}),
    Case("both Local, every endpoint elsewhere", NO_ZONE, NP_BOTH_LOCAL, [ep(0), ep(1)], {0, 1}, set()),
    Case("both Local, every endpoint elsewhere and terminating", NO_ZONE, NP_BOTH_LOCAL, [ep(0, TERMINATING), ep(1, TERMINATING)], {0, 1}, set()),
    Case("external Local, this node's endpoints only terminating: they stand in here", NO_ZONE, NP_ETP_LOCAL,
         [ep(0), ep(1, GONE, local=True), ep(2, TERMINATING, local=True), ep(3, TERMINATING)], {0}, {2}),
    Case("externalTrafficPolicy Local without anything external: ignored", NO_ZONE, ETP_LOCAL_INTERNAL, [ep(0), ep(1, local=True)], {0, 1}, None),
    Case("internalTrafficPolicy Local without anything external: no cluster-wide endpoints", NO_ZONE, ITP_LOCAL, [ep(0), ep(1, local=True)], None, {1}),
    Case("external Local, no endpoints", NO_ZONE, NP_ETP_LOCAL, [], set(), set()),
    Case("external Local, every endpoint elsewhere", NO_ZONE, NP_ETP_LOCAL, [ep(0), ep(1)], {0, 1}, set()),
    Case("external Local, every endpoint here", NO_ZONE, NP_ETP_LOCAL, [ep(0, local=True), ep(1, local=True)], {0, 1}, {0, 1}),
    Case("external Local, one endpoint here", NO_ZONE, NP_ETP_LOCAL, [ep(0, local=True), ep(1)], {0, 1}, {0}),
]


def test_every_upstream_case_but_the_gated_one_is_here() -> None:
    assert len(CASES) == 33


def octets(endpoints: tuple[Backend, ...] | None) -> set[int] | None:
    return None if endpoints is None else {int(e.address.rsplit(".", 1)[1]) for e in endpoints}


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_categorize(case: Case) -> None:
    found = categorize(case.endpoints, *uses(*case.policies), case.node)
    assert (octets(found.cluster), octets(found.local)) == (case.cluster, case.local)  # type: ignore[arg-type]


def resolved_service(case: Case) -> ResolvedService:
    itp, etp, external = case.policies
    hinted = any(e.zone_hints or e.node_hints for e in case.endpoints)
    return ResolvedService(
        namespace="default", name="web", type=ServiceType.NODE_PORT if external else ServiceType.CLUSTER_IP,
        cluster_ips=("10.96.0.10",), external_ips=(), load_balancer_ips=(), source_ranges=(),
        external_traffic_policy=TrafficPolicy.LOCAL if etp else TrafficPolicy.CLUSTER,
        internal_traffic_policy=TrafficPolicy.LOCAL if itp else TrafficPolicy.CLUSTER,
        affinity_timeout=None, headless=False, external_name="", endpoint_source=EndpointSource.SLICES,
        ports=(ResolvedPort("http", Protocol.TCP, 80, 80, 30080 if external else 0, tuple(case.endpoints)),),
        node=case.node if hinted else None,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_the_plan_makes_its_groups_of_the_same_sets(case: Case) -> None:
    """The plan's endpoint groups (what the rules DNAT to) are kube-proxy's sets: a group for
    each set that traffic uses and that is not empty; all it reaches is their union."""
    svc = resolved_service(case)
    port = svc.ports[0]
    choice = choose(svc, port, port_ref(svc, port), 4, case.policies.external)

    def members(group) -> set[int] | None:  # type: ignore[no-untyped-def]
        return None if group is None else {int(e.address.rsplit(".", 1)[1]) for e in group.endpoints}

    assert members(choice.cluster) == (case.cluster or None)
    assert members(choice.node_local) == (case.local or None)
    assert octets(choice.used) == (case.cluster or set()) | (case.local or set())


@pytest.mark.parametrize(
    "case, verdict",
    [
        (next(c for c in CASES if c.what == "internalTrafficPolicy Local, no endpoints"), Action.REJECT),
        (next(c for c in CASES if c.what == "internalTrafficPolicy Local, every endpoint elsewhere"), Action.DROP),
        (next(c for c in CASES if c.what == "no endpoint ready"), Action.REJECT),
    ],
    ids=["no endpoints: rejected", "none here under Local: dropped", "none usable: rejected"],
)
def test_no_endpoint_for_the_cluster_ip(case: Case, verdict: Action) -> None:
    """An empty set with no usable endpoint anywhere rejects; under a Local policy with usable
    endpoints elsewhere, it drops (kube-proxy's hasAnyEndpoints)."""
    (family, _) = make_plan([resolved_service(case)], Options(node_name="this-node")).families
    (port,) = family.ports
    assert [a for _, a in port.no_endpoint_ips] == [verdict]


# ---- readiness and families (what ResolvedPort.usable did before topology) --------------------


def test_only_ready_endpoints_while_any_is_ready() -> None:
    found = categorize([ep(1), ep(2, TERMINATING), ep(3, GONE)], True, False, None)
    assert octets(found.cluster) == {1} and found.any  # type: ignore[arg-type]


def test_the_terminating_fallback_needs_serving() -> None:
    found = categorize([ep(1, TERMINATING), ep(2, (False, False, True)), ep(3, UNREADY)], True, False, None)
    assert octets(found.cluster) == {1}  # type: ignore[arg-type]
    gone = categorize([ep(2, GONE)], True, True, None)
    assert (gone.cluster, gone.local, gone.any) == ((), (), False)


def test_the_local_fallback_is_decided_among_local_endpoints_alone() -> None:
    found = categorize([ep(1), ep(2, TERMINATING, local=True), ep(3, (False, False, True), local=True)], True, True, None)
    # a ready remote endpoint does not keep this node's terminating one from standing in
    assert (octets(found.cluster), octets(found.local)) == ({1}, {2})  # type: ignore[arg-type]


def test_each_family_is_categorized_on_its_own() -> None:
    v6 = Backend("fd00::1", 80, "node-2", False, True, True, "", False, zone_hints=("zone-b",))
    svc = resolved_service(Case("", ZONE_A, PLAIN, [ep(1, zones="zone-a"), ep(2, zones="zone-b"), v6], None, None))
    svc = ResolvedService(**{**svc.__dict__, "cluster_ips": ("10.96.0.10", "fd00:10:96::10")})
    port = svc.ports[0]
    four = choose(svc, port, port_ref(svc, port), 4, False)
    six = choose(svc, port, port_ref(svc, port), 6, False)
    assert four.cluster is not None and four.cluster.endpoints == ((("10.0.0.1", 80)),)
    assert four.cluster.hints is not None and four.cluster.hints.mode is Mode.ZONE
    # IPv6: nothing ready, so the terminating endpoint stands in, whatever its hints say
    assert six.cluster is not None and six.cluster.endpoints == (("fd00::1", 80),) and six.cluster.fallback
    assert six.cluster.hints is not None and six.cluster.hints.mode is Mode.ALL and six.cluster.hints.ready == 0


def test_without_hints_the_node_is_not_consulted() -> None:
    """A Service none of whose endpoints has hints is categorized without this node's place."""
    for case in CASES:
        if not any(e.zone_hints or e.node_hints for e in case.endpoints):
            with_node = categorize(case.endpoints, *uses(*case.policies), ZONE_A)
            assert with_node == categorize(case.endpoints, *uses(*case.policies), None)
            assert with_node.hints is None


# ---- the decision, in words ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "node, endpoints, mode, why",
    [
        (ZONE_A, same_four(False), Mode.ZONE, ""),
        (NodeTopology("node-1", "zone-a"), same_four(True), Mode.NODE, ""),
        (NodeTopology("node-0", "zone-a"), same_four(True), Mode.ZONE, "no ready endpoint is hinted for node node-0"),
        (NodeTopology("node-1", ""), same_four(False), Mode.ALL,
         "this node has no zone: give --node-zone, or a topology.kubernetes.io/zone label to its Node"),
        (NodeTopology("node-1", "zone-b"), [ep(3, zones="zone-a"), ep(5)], Mode.ALL,
         "10.0.0.5:80 has no zone hint, and they are used only when every ready endpoint has one"),
        (NodeTopology("node-1", "zone-d"), same_four(False), Mode.ALL, "no ready endpoint is hinted for zone zone-d"),
        (NodeTopology("node-1", "zone-a"), [ep(3, zones="zone-a", nodes="node-1"), ep(4, zones="zone-a")], Mode.ZONE,
         "10.0.0.4:80 has no node hint, and they are used only when every ready endpoint has one"),
        (NodeTopology("node-9", "zone-z"), same_four(True), Mode.ALL,
         "no ready endpoint is hinted for node node-9; no ready endpoint is hinted for zone zone-z"),
    ],
)
def test_the_decision_says_why(node: NodeTopology, endpoints: list[Backend], mode: Mode, why: str) -> None:
    hints = categorize(endpoints, True, False, node).hints
    assert hints is not None and (hints.mode, hints.why) == (mode, why)
    assert hints.ready == sum(e.ready for e in endpoints)


def test_decision_texts() -> None:
    zone = categorize(same_four(False), True, False, ZONE_A).hints
    assert zone is not None and zone.text() == "zone hints: only the endpoints hinted for this node's zone zone-a: 2 of 4 ready endpoint(s)"
    node = categorize(same_four(True), True, False, NodeTopology("node-1", "zone-a")).hints
    assert node is not None and node.text() == "node hints: only the endpoints hinted for this node (node-1): 1 of 4 ready endpoint(s)"
    unused = categorize(same_four(False), True, False, NodeTopology("n", "zone-q")).hints
    assert unused is not None and unused.text() == "hints not used (no ready endpoint is hinted for zone zone-q): all 4 ready endpoint(s)"
    local = categorize(same_four(False), False, True, ZONE_A).hints
    assert local is not None and local.mode is Mode.LOCAL
    assert local.text() == "hints do not apply to this node's own endpoints (kube-proxy filters only cluster-wide traffic by them)"


# ---- the EndpointSlice controller's hints, where svcctl makes the endpoints ------------------


def node_object(name: str, zone: str | None) -> dict:
    labels = {"topology.kubernetes.io/zone": zone} if zone is not None else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


NODES = [node_object("node-a", "zone-a"), node_object("node-b", "zone-b")]


def hints_of(write, *docs, node: str = "node-a", zone: str = "") -> tuple[ResolvedService, list[tuple]]:  # type: ignore[no-untyped-def]
    """The Service "web" and (address, zone, zone hints, node hints) of each endpoint of its port."""
    svc = resolved(write(dump(*docs)), options=Options(node_name=node, node_zone=zone))["default/web"]
    return svc, [(b.address, b.zone, b.zone_hints, b.node_hints) for b in svc.ports[0].backends]


def two_pods(**kw) -> list[dict]:  # type: ignore[no-untyped-def]
    return [pod("p1", ["10.3.0.1"], node="node-a", **kw), pod("p2", ["10.3.0.2"], node="node-b", **kw)]


@pytest.mark.parametrize("distribution", ["PreferClose", "PreferSameZone"])
def test_prefer_same_zone_hints_each_ready_pod_for_its_nodes_zone(write, distribution: str) -> None:
    svc, found = hints_of(write, service(trafficDistribution=distribution), *two_pods(), *NODES)
    assert found == [("10.3.0.1", "zone-a", ("zone-a",), ()), ("10.3.0.2", "zone-b", ("zone-b",), ())]
    assert svc.node == NodeTopology("node-a", "zone-a")  # this node's zone, from its Node


def test_prefer_same_node_hints_for_the_node_too(write) -> None:
    _, found = hints_of(write, service(trafficDistribution="PreferSameNode"), *two_pods(), *NODES)
    assert found == [("10.3.0.1", "zone-a", ("zone-a",), ("node-a",)), ("10.3.0.2", "zone-b", ("zone-b",), ("node-b",))]


def test_only_ready_endpoints_are_hinted(write) -> None:
    docs = [pod("p1", ["10.3.0.1"], node="node-a"), pod("p2", ["10.3.0.2"], node="node-b", ready=False),
            pod("p3", ["10.3.0.3"], node="node-b", deleting=True)]
    _, found = hints_of(write, service(trafficDistribution="PreferSameNode"), *docs, *NODES)
    assert found == [("10.3.0.1", "zone-a", ("zone-a",), ("node-a",)), ("10.3.0.2", "zone-b", (), ()), ("10.3.0.3", "zone-b", (), ())]


def test_a_pod_on_a_node_not_in_the_input_has_no_zone_hint(write) -> None:
    """So one ready endpoint is without a zone hint, and kube-proxy uses none of them."""
    svc, found = hints_of(write, service(trafficDistribution="PreferSameZone"), *two_pods(), NODES[0])
    assert found == [("10.3.0.1", "zone-a", ("zone-a",), ()), ("10.3.0.2", "", (), ())]
    (family, _) = make_plan([svc], Options(node_name="node-a")).families
    (group,) = family.ports[0].groups
    assert len(group.endpoints) == 2 and group.hints is not None and group.hints.mode is Mode.ALL
    assert group.hints.why == "10.3.0.2:8080 has no zone hint, and they are used only when every ready endpoint has one"


@pytest.mark.parametrize(
    "annotations",
    [{"service.kubernetes.io/topology-mode": "Auto"}, {"service.kubernetes.io/topology-aware-hints": "auto"}],
)
def test_auto_mode_is_not_emulated_and_outranks_traffic_distribution(write, annotations: dict) -> None:
    svc_doc = service(trafficDistribution="PreferSameZone")
    svc_doc["metadata"]["annotations"] = annotations
    svc, found = hints_of(write, svc_doc, *two_pods(), *NODES)
    assert [f[2:] for f in found] == [((), ()), ((), ())] and svc.node is None


def test_another_topology_mode_leaves_traffic_distribution_in_charge(write) -> None:
    svc_doc = service(trafficDistribution="PreferSameZone")
    svc_doc["metadata"]["annotations"] = {"service.kubernetes.io/topology-mode": "Disabled"}
    _, found = hints_of(write, svc_doc, *two_pods(), *NODES)
    assert [f[2] for f in found] == [("zone-a",), ("zone-b",)]


def test_without_traffic_distribution_nothing_is_hinted(write) -> None:
    svc, found = hints_of(write, service(), *two_pods(), *NODES)
    assert [f[1:] for f in found] == [("zone-a", (), ()), ("zone-b", (), ())] and svc.node is None


def test_endpoints_of_a_service_with_a_selector_are_hinted_as_its_pods_would_be(write) -> None:
    subsets = [{"addresses": [{"ip": "10.2.0.1", "nodeName": "node-a"}, {"ip": "10.2.0.3", "nodeName": "node-b"}],
                "notReadyAddresses": [{"ip": "10.2.0.2", "nodeName": "node-b"}], "ports": [{"name": "http", "port": 8080}]}]
    _, found = hints_of(write, service(trafficDistribution="PreferSameNode"), endpoints_object(subsets=subsets), *NODES)
    assert found == [
        ("10.2.0.1", "zone-a", ("zone-a",), ("node-a",)), ("10.2.0.2", "zone-b", (), ()), ("10.2.0.3", "zone-b", ("zone-b",), ("node-b",)),
    ]


def test_endpoints_of_a_service_without_a_selector_are_mirrored_without_zones_or_hints(write) -> None:
    subsets = [{"addresses": [{"ip": "10.2.0.1", "nodeName": "node-a"}], "ports": [{"name": "http", "port": 8080}]}]
    svc, found = hints_of(write, service(selector=False, trafficDistribution="PreferSameZone"), endpoints_object(subsets=subsets), *NODES)
    assert found == [("10.2.0.1", "", (), ())] and svc.node is None


def test_endpoint_slices_keep_their_hints_whatever_the_service_says(write) -> None:
    endpoints = [
        {"addresses": ["10.1.0.1"], "nodeName": "node-b", "zone": "zone-b", "hints": {"forZones": [{"name": "zone-a"}], "forNodes": [{"name": "node-a"}]}},
        {"addresses": ["10.1.0.2"], "zone": "zone-b"},
    ]
    svc, found = hints_of(write, service(trafficDistribution="PreferSameNode"), endpoint_slice(endpoints=endpoints), *NODES)
    assert found == [("10.1.0.1", "zone-b", ("zone-a",), ("node-a",)), ("10.1.0.2", "zone-b", (), ())]
    svc, found = hints_of(write, service(), endpoint_slice(endpoints=endpoints[:1]))
    assert found == [("10.1.0.1", "zone-b", ("zone-a",), ("node-a",))] and svc.node == NodeTopology("node-a", "")


# ---- this node's zone -------------------------------------------------------------------------


def test_this_nodes_zone_is_the_option_else_its_nodes_label(write) -> None:
    docs = [service(trafficDistribution="PreferSameZone"), *two_pods(), *NODES]
    assert hints_of(write, *docs)[0].node == NodeTopology("node-a", "zone-a")
    assert hints_of(write, *docs, node="node-b")[0].node == NodeTopology("node-b", "zone-b")
    assert hints_of(write, *docs, zone="zone-q")[0].node == NodeTopology("node-a", "zone-q")  # --node-zone wins
    assert hints_of(write, *docs, node="node-c")[0].node == NodeTopology("node-c", "")  # no Node of that name


@pytest.mark.parametrize("value, message", [("zone a", "is not a valid zone"), ("-zone", "is not a valid zone"),
                                            ("z" * 64, "is not a valid zone"), (3, "Invalid value: 3: must be a string")])
def test_node_zone_must_be_a_label_value(value: object, message: str) -> None:
    with pytest.raises(Exception) as err:
        build_options({"node-zone": value})
    assert message in str(err.value.problems[0])  # type: ignore[attr-defined]


def test_node_zone_from_the_config_file(write) -> None:
    assert build_options({}, read_config(write("node-zone: zone-c\n", "node.yaml"))).node_zone == "zone-c"
    assert build_options({"node-zone": "zone-d"}, read_config(write("node-zone: zone-c\n", "node.yaml"))).node_zone == "zone-d"


# ---- show and trace -------------------------------------------------------------------------

SHOWN = """
    apiVersion: v1
    kind: Node
    metadata: {name: node-a, labels: {topology.kubernetes.io/zone: zone-a}}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: shop}
    spec: {type: NodePort, clusterIP: 10.96.0.70, externalTrafficPolicy: Local, ports: [{port: 80, nodePort: 30070}]}
    ---
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
    addressType: IPv4
    ports: [{port: 8080}]
    endpoints:
    - {addresses: [10.244.1.1], nodeName: node-a, hints: {forZones: [{name: zone-a}]}}
    - {addresses: [10.244.1.2], nodeName: node-a, hints: {forZones: [{name: zone-b}]}}
    - {addresses: [10.244.2.1], nodeName: node-b, hints: {forZones: [{name: zone-a}]}}
    - {addresses: [10.244.3.1], nodeName: node-c, hints: {forZones: [{name: zone-b}, {name: zone-c}]}}
"""


def test_show_marks_which_endpoints_this_node_uses_and_why(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = write(SHOWN)
    table = run_cli("show", "--node-name", "node-a", path).out.splitlines()[1]
    assert table.endswith(
        "10.244.1.1:8080 (local) [1/2, zone hint, local 1/2], 10.244.1.2:8080 (local) [hints for zone-b, local 1/2], "
        "10.244.2.1:8080 [1/2, zone hint], 10.244.3.1:8080 [not used: hints for zone-b, zone-c]"
    ), table
    # In zone-d no endpoint is hinted for this node's zone: all of them, and why.
    table = run_cli("show", "--node-name", "node-a", "--node-zone", "zone-d", path).out.splitlines()[1]
    assert table.endswith(
        "10.244.1.1:8080 (local) [1/4, local 1/2], 10.244.1.2:8080 (local) [1/4, local 1/2], 10.244.2.1:8080 [1/4], 10.244.3.1:8080 [1/4] "
        "(hints not used: no ready endpoint is hinted for zone zone-d)"
    ), table


def test_show_json_gives_hints_use_and_the_decision(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    (svc,) = json.loads(run_cli("show", "--node-name", "node-a", "-o", "json", write(SHOWN)).out)
    (port,) = svc["ports"]
    assert [(e["address"], e["zoneHints"], e["nodeHints"], e["used"], e["topology"]) for e in port["endpoints"]] == [
        ("10.244.1.1", ["zone-a"], [], True, "zone hint"),
        ("10.244.1.2", ["zone-b"], [], True, "hints for zone-b"),  # this node's: used by the Local policy
        ("10.244.2.1", ["zone-a"], [], True, "zone hint"),
        ("10.244.3.1", ["zone-b", "zone-c"], [], False, "hints for zone-b, zone-c"),
    ]
    assert port["topology"] == [
        {"family": "IPv4", "mode": "zone", "nodeName": "node-a", "zone": "zone-a", "kept": 2, "ready": 4, "reason": None},
    ]


def test_trace_json_has_the_decision_only_where_hints_are(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = write(SHOWN)
    inside = json.loads(run_cli("trace", path, "--node-name", "node-a", "--to", "10.96.0.70:80", "-o", "json").out)
    assert inside["topology"]["mode"] == "zone" and [e["address"] for e in inside["endpoints"]] == ["10.244.1.1:8080", "10.244.2.1:8080"]
    assert "nat prerouting: topology: zone hints: only the endpoints hinted for this node's zone zone-a: 2 of 4 ready endpoint(s)" in inside["reasons"]
    unhinted = write("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.71, ports: [{port: 80}]}\n", "plain.yaml")
    assert "topology" not in json.loads(run_cli("trace", unhinted, "--node-name", "node-a", "--to", "10.96.0.71:80", "-o", "json").out)


@pytest.mark.parametrize("command", ["compile", "apply", "diff", "trace", "run", "show"])
def test_node_zone_is_an_option_of_the_commands_that_take_node_settings(command: str, run_cli) -> None:  # type: ignore[no-untyped-def]
    assert "--node-zone" in run_cli(command, "--help").out


def test_bad_node_zone_is_one_line_and_exit_2(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    run = run_cli("compile", write(SHOWN), "--node-name", "node-a", "--node-zone", "zone a")
    assert run.code == 2
    assert run.err.startswith('command line: node-zone: "zone a" is not a valid zone') and run.err.count("\n") == 1, run.err


def test_verbose_says_auto_mode_is_not_emulated(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = write("""
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop, annotations: {service.kubernetes.io/topology-mode: Auto}}
        spec: {clusterIP: 10.96.0.72, selector: {app: web}, ports: [{port: 80}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: sliced, namespace: shop, annotations: {service.kubernetes.io/topology-mode: Auto}}
        spec: {clusterIP: 10.96.0.73, ports: [{port: 80}]}
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: sliced-1, namespace: shop, labels: {kubernetes.io/service-name: sliced}}
        addressType: IPv4
        endpoints: []
    """)
    for command in ("compile", "show", "apply --dry-run"):
        quiet = run_cli(*command.split(), path, "--node-name", "node-a")
        assert "Auto" not in quiet.err
    loud = run_cli("compile", "-v", path, "--node-name", "node-a")
    assert loud.code == 0
    # Only the Service whose endpoints svcctl makes: the other's EndpointSlices carry the hints.
    assert loud.err == (
        f"svcctl: warning: {path}:1: Service shop/web: topology-mode Auto is not emulated: svcctl does not compute the EndpointSlice "
        "controller's proportional zone hints, so the endpoints it makes from Pods or Endpoints have none (give EndpointSlices to use "
        "a cluster's hints)\n"
    )
