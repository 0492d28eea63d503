"""Topology-aware routing with real packets (docs/topology.md): ``svcctl apply`` in the lab's node,
real connections from a client outside, a pod and the node itself, and ``svcctl trace --live``
checked against them (test_trace.observe: every answer from a predicted endpoint, the spread
as predicted, the live rules agreeing).

The lab has one node (node-1) and one pod bridge: "zones" and "nodes" are what the manifests
say. Node objects give the zones (topology.kubernetes.io/zone); EndpointSlices carry hints, or
svcctl writes them from trafficDistribution as the EndpointSlice controller would. Every pod
answers when asked, so a pod that gets no traffic got none because the rules left it out.
"""

from __future__ import annotations

from collections import Counter

from scenarios import NODE, NODE_ARGS, backend_fixture, endpoint_slice, pod, port, service  # noqa: F401 (fixture: every test once per back end)
import test_traffic
from test_trace import apply, observe
from test_traffic import LB_IP

pytestmark = test_traffic.pytestmark
# test_traffic.py's fixtures: a lab of the same shape for this module, svcctl in its node, the pods.
lab, svc, hosts = test_traffic.lab, test_traffic.svc, test_traffic.hosts

ZONE_LABEL = "topology.kubernetes.io/zone"
SLICE_PORTS = [{"name": "http", "port": 8080, "protocol": "TCP"}]
CLIENTS = ("client", "pod-d", "node")  # outside the cluster, a pod (never an endpoint here), this node itself
SPREAD = 150  # connections where the spread over two or three endpoints is checked


def node(name, zone):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {ZONE_LABEL: zone}}}


def hinted(host, on, zones=(), nodes=()):
    """A ready EndpointSlice endpoint for a lab pod, on node ``on``, hinted for these zones and nodes."""
    endpoint = {"addresses": [host.ip4], "nodeName": on, "conditions": {"ready": True}}
    hints = {k: [{"name": n} for n in names] for k, names in (("forZones", zones), ("forNodes", nodes)) if names}
    if hints:
        endpoint["hints"] = hints
    return endpoint


def answered(results):
    return Counter(r.reply["pod"] for r in results if r.ok)


ZONES = [node(NODE, "zone-a"), node("node-2", "zone-a"), node("node-3", "zone-b")]


def zoned_service(hosts, *, hint_last=True):
    """Service "zoned" (10.96.5.10): pod-a on this node and pod-b on node-2 hinted for zone-a,
    pod-c on node-3 for zone-b (or, without ``hint_last``, for none). pod-d is the client pod."""
    a, b, c, _ = hosts
    endpoints = [hinted(a, NODE, ["zone-a"]), hinted(b, "node-2", ["zone-a"]), hinted(c, "node-3", ["zone-b"] if hint_last else [])]
    return [service("zoned", [port(80, name="http")], cluster_ip="10.96.5.10", trafficDistribution="PreferSameZone"),
            endpoint_slice("zoned", "zoned-1", endpoints, SLICE_PORTS), *ZONES]


def test_only_the_endpoints_hinted_for_this_nodes_zone_answer(svc, hosts):
    path = apply(svc, *zoned_service(hosts))
    for client in CLIENTS:
        predicted, results = observe(svc, path, client, "10.96.5.10", 80, n=SPREAD)
        assert set(answered(results)) == {"pod-a", "pod-b"}, (client, answered(results))
        assert predicted["topology"] == {"mode": "zone", "nodeName": NODE, "zone": "zone-a", "kept": 2, "ready": 3, "reason": None}
    # --node-zone puts the node in zone-b, whatever its Node says: pod-c alone.
    elsewhere = (*NODE_ARGS, "--node-zone", "zone-b")
    path = apply(svc, path=path, node_args=elsewhere)
    _, results = observe(svc, path, "client", "10.96.5.10", 80, node_args=elsewhere)
    assert set(answered(results)) == {"pod-c"}, answered(results)


def test_one_endpoint_without_hints_and_every_pod_answers(svc, hosts):
    path = apply(svc, *zoned_service(hosts, hint_last=False))
    for client in CLIENTS:
        predicted, results = observe(svc, path, client, "10.96.5.10", 80, n=SPREAD)
        assert set(answered(results)) == {"pod-a", "pod-b", "pod-c"}, (client, answered(results))
        assert predicted["topology"]["mode"] == "all"
        assert predicted["topology"]["reason"] == f"{hosts[2].ip4}:8080 has no zone hint, and they are used only when every ready endpoint has one"


def test_prefer_same_node_keeps_traffic_on_the_node(svc, hosts):
    """Endpoints from Pods: svcctl hints each for its own node (and zone), as the EndpointSlice
    controller does for PreferSameNode. pod-b and pod-c run on other "nodes", one in this node's
    zone: this node's clients reach pod-a alone. The same pods behind a Service without
    trafficDistribution all answer: they are reachable, only the hints keep them out."""
    a, b, c, _ = hosts
    pods = [pod(a, {"app": "near"}, node=NODE), pod(b, {"app": "near"}, node="node-2"), pod(c, {"app": "near"}, node="node-3")]
    path = apply(svc,
        service("near", [port(80)], selector={"app": "near"}, cluster_ip="10.96.5.20", trafficDistribution="PreferSameNode"),
        service("anywhere", [port(80)], selector={"app": "near"}, cluster_ip="10.96.5.21"),
        *pods, *ZONES,
    )
    for client in CLIENTS:
        predicted, results = observe(svc, path, client, "10.96.5.20", 80, n=60)
        assert answered(results) == {"pod-a": 60}, (client, answered(results))
        assert predicted["topology"]["mode"] == "node"
    _, results = observe(svc, path, "client", "10.96.5.21", 80, n=SPREAD)
    assert set(answered(results)) == {"pod-a", "pod-b", "pod-c"}


def test_hints_narrow_only_cluster_wide_traffic(svc, hosts):
    """externalTrafficPolicy Local: outside clients go to this node's endpoints (pod-a, pod-b),
    hints or not; pods (kube-proxy's short-circuit) go to the cluster-wide ones, narrowed to
    zone-a (pod-a, pod-c)."""
    a, b, c, d = hosts
    endpoints = [hinted(a, NODE, ["zone-a"]), hinted(b, NODE, ["zone-b"]), hinted(c, "node-2", ["zone-a"]), hinted(d, "node-3", ["zone-b"])]
    path = apply(svc,
        service("edge", [port(80, name="http", node_port=30095)], type="LoadBalancer", cluster_ip="10.96.5.30",
                externalTrafficPolicy="Local", status={"loadBalancer": {"ingress": [{"ip": LB_IP}]}}),
        endpoint_slice("edge", "edge-1", endpoints, SLICE_PORTS), *ZONES,
    )
    outside, results = observe(svc, path, "client", LB_IP, 80, n=SPREAD)
    assert set(answered(results)) == {"pod-a", "pod-b"} and outside["topology"]["mode"] == "local"
    inside, results = observe(svc, path, "pod-d", LB_IP, 80, n=SPREAD)
    assert set(answered(results)) == {"pod-a", "pod-c"} and inside["topology"]["mode"] == "zone"
