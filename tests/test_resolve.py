"""Endpoint resolution: where endpoints come from, and the endpoints controller's rules for Pods."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import resolved

from svcctl.options import Options
from svcctl.resolve import Backend, ResolvedPort, EndpointSource


def dump(*docs: dict[str, Any]) -> str:
    return "\n---\n".join(json.dumps(d) for d in docs) + "\n"


def service(name="web", ports=None, selector=None, namespace="default", **spec: Any) -> dict[str, Any]:
    spec = {"ports": ports or [{"name": "http", "port": 80, "targetPort": 8080}], **spec}
    if selector is not False:
        spec["selector"] = selector or {"app": name}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def pod(
    name: str,
    ips: list[str] | None,
    labels: dict[str, str] | None = None,
    ready: bool = True,
    node: str = "node-a",
    ports: list[dict[str, Any]] | None = None,
    namespace: str = "default",
    phase: str = "Running",
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels if labels is not None else {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T10:00:00Z"
        meta["deletionGracePeriodSeconds"] = 30
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ips:
        status["podIP"] = ips[0]
        status["podIPs"] = [{"ip": ip} for ip in ips]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "img", "ports": ports or []}]},
        "status": status,
    }


def endpoint_slice(name="web-abc", service_name="web", endpoints=None, ports=None, address_type="IPv4", namespace="default"):
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace, "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": address_type,
        "endpoints": endpoints if endpoints is not None else [{"addresses": ["10.1.0.1"], "nodeName": "node-a", "zone": "z1"}],
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def endpoints_object(name="web", subsets=None, namespace="default"):
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": namespace},
        "subsets": subsets
        if subsets is not None
        else [{"addresses": [{"ip": "10.2.0.1", "nodeName": "node-b"}], "notReadyAddresses": [{"ip": "10.2.0.2"}], "ports": [{"name": "http", "port": 8080}]}],
    }


def backends(port: ResolvedPort) -> list[tuple]:
    """(address, port, node, ready, serving, terminating) per backend."""
    return [(b.address, b.port, b.node, b.ready, b.serving, b.terminating) for b in port.backends]


def resolve_docs(write, *docs, options: Options | None = None):
    return resolved(write(dump(*docs)), options=options)


# ---- where endpoints come from -------------------------------------------------------------


def test_precedence_slices_then_endpoints_then_pods(write):
    svc, p = service(), pod("p1", ["10.3.0.1"])
    es, ep = endpoint_slice(), endpoints_object()
    s = resolve_docs(write, svc, p, ep, es)["default/web"]
    assert s.endpoint_source is EndpointSource.SLICES
    assert backends(s.ports[0]) == [("10.1.0.1", 8080, "node-a", True, True, False)]
    assert s.ports[0].backends[0].zone == "z1"

    s = resolve_docs(write, svc, p, ep)["default/web"]
    assert s.endpoint_source is EndpointSource.ENDPOINTS
    assert backends(s.ports[0]) == [
        ("10.2.0.1", 8080, "node-b", True, True, False),
        ("10.2.0.2", 8080, "", False, False, False),
    ]

    s = resolve_docs(write, svc, p)["default/web"]
    assert s.endpoint_source is EndpointSource.PODS
    assert backends(s.ports[0]) == [("10.3.0.1", 8080, "node-a", True, True, False)]

    s = resolve_docs(write, service(selector=False), p)["default/web"]
    assert s.endpoint_source is EndpointSource.NONE
    assert s.ports[0].backends == ()


def test_objects_of_other_services_and_namespaces_are_not_used(write):
    docs = [
        service(),
        endpoint_slice(name="other-1", service_name="other"),
        endpoint_slice(name="web-x", namespace="prod"),
        endpoints_object(namespace="prod"),
        pod("elsewhere", ["10.3.0.9"], namespace="prod"),
        pod("unlabelled", ["10.3.0.8"], labels={"app": "db"}),
        pod("mine", ["10.3.0.1"]),
    ]
    s = resolve_docs(write, *docs)["default/web"]
    assert s.endpoint_source is EndpointSource.PODS
    assert backends(s.ports[0]) == [("10.3.0.1", 8080, "node-a", True, True, False)]


# ---- Pods: the endpoints controller's rules ------------------------------------------------


def test_named_target_port_resolved_per_pod(write):
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "web"}, {"name": "admin", "port": 81, "targetPort": 9000}])
    docs = [
        svc,
        pod("a", ["10.3.0.1"], ports=[{"name": "web", "containerPort": 8080}]),
        pod("b", ["10.3.0.2"], ports=[{"name": "metrics", "containerPort": 9100}, {"name": "web", "containerPort": 9090}]),
        pod("c", ["10.3.0.3"], ports=[{"name": "other", "containerPort": 8080}]),
    ]
    s = resolve_docs(write, *docs)["default/web"]
    assert [(b.address, b.port) for b in s.ports[0].backends] == [("10.3.0.1", 8080), ("10.3.0.2", 9090)]
    # the numeric targetPort applies to every pod, the one without "web" too
    assert [(b.address, b.port) for b in s.ports[1].backends] == [("10.3.0.1", 9000), ("10.3.0.2", 9000), ("10.3.0.3", 9000)]


def test_named_target_port_needs_the_same_protocol(write):
    svc = service(
        "dns",
        ports=[{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}, {"name": "dns-tcp", "port": 53, "targetPort": "dns"}],
    )
    p = pod("coredns", ["10.3.0.5"], labels={"app": "dns"}, ports=[{"name": "dns", "containerPort": 5353, "protocol": "UDP"}])
    s = resolve_docs(write, svc, p)["default/dns"]
    assert [(b.address, b.port) for b in s.ports[0].backends] == [("10.3.0.5", 5353)]
    assert s.ports[1].backends == ()


def test_readiness_publish_not_ready_and_terminating(write):
    pods = [
        pod("ready", ["10.3.0.1"]),
        pod("unready", ["10.3.0.2"], ready=False),
        pod("leaving", ["10.3.0.3"], deleting=True),
        pod("leaving-unready", ["10.3.0.4"], ready=False, deleting=True),
    ]
    s = resolve_docs(write, service(), *pods)["default/web"]
    assert backends(s.ports[0]) == [
        ("10.3.0.1", 8080, "node-a", True, True, False),
        ("10.3.0.2", 8080, "node-a", False, False, False),
        ("10.3.0.3", 8080, "node-a", False, True, True),  # terminating: never ready, serving per Ready
        ("10.3.0.4", 8080, "node-a", False, False, True),
    ]
    s = resolve_docs(write, service(publishNotReadyAddresses=True), *pods)["default/web"]
    assert [(b.address, b.ready, b.serving, b.terminating) for b in s.ports[0].backends] == [
        ("10.3.0.1", True, True, False),
        ("10.3.0.2", True, False, False),
        ("10.3.0.3", True, True, True),
        ("10.3.0.4", True, False, True),
    ]


def test_pods_without_ip_or_finished_are_left_out(write):
    pods = [
        pod("pending", None, ready=False, phase="Pending"),
        pod("done", ["10.3.0.2"], ready=False, phase="Succeeded"),
        pod("crashed", ["10.3.0.3"], ready=False, phase="Failed"),
        pod("running", ["10.3.0.4"]),
    ]
    s = resolve_docs(write, service(), *pods)["default/web"]
    assert [b.address for b in s.ports[0].backends] == ["10.3.0.4"]


def test_dual_stack_pods_give_one_backend_per_ip(write):
    dual = service(ipFamilyPolicy="RequireDualStack")
    p = pod("p", ["10.3.0.1", "fd00:3::1"])
    s = resolve_docs(write, dual, p)["default/web"]
    assert [(b.address, b.version) for b in s.ports[0].backends] == [("10.3.0.1", 4), ("fd00:3::1", 6)]


def test_single_stack_service_takes_the_pod_ip_of_its_family(write):
    # The EndpointSlice controller makes slices only for the Service's IP families.
    p = pod("p", ["10.3.0.1", "fd00:3::1"])
    s = resolve_docs(write, service(), p)["default/web"]
    assert [b.address for b in s.ports[0].backends] == ["10.3.0.1"]
    s = resolve_docs(write, service(ipFamilies=["IPv6"]), p)["default/web"]
    assert [b.address for b in s.ports[0].backends] == ["fd00:3::1"]


def test_local_flag_comes_from_the_node_name(write):
    docs = [service(), pod("here", ["10.3.0.1"], node="node-a"), pod("there", ["10.3.0.2"], node="node-b")]
    s = resolve_docs(write, *docs, options=Options(node_name="node-b"))["default/web"]
    assert [(b.address, b.node, b.local) for b in s.ports[0].backends] == [("10.3.0.1", "node-a", False), ("10.3.0.2", "node-b", True)]


# ---- EndpointSlices ------------------------------------------------------------------------


def test_slice_condition_defaults_zone_and_node(write):
    es = endpoint_slice(
        endpoints=[
            {"addresses": ["10.1.0.1"]},
            {"addresses": ["10.1.0.2"], "conditions": {"ready": False}},
            {"addresses": ["10.1.0.3"], "conditions": {"ready": False, "serving": True, "terminating": True}, "nodeName": "node-a", "zone": "z2"},
            {"addresses": ["10.1.0.4", "10.1.0.5"], "conditions": {"serving": False}},
        ]
    )
    s = resolve_docs(write, service(), es)["default/web"]
    assert [(b.address, b.ready, b.serving, b.terminating, b.node, b.zone, b.local) for b in s.ports[0].backends] == [
        ("10.1.0.1", True, True, False, "", "", False),
        ("10.1.0.2", False, True, False, "", "", False),
        ("10.1.0.3", False, True, True, "node-a", "z2", True),
        ("10.1.0.4", True, False, False, "", "", False),  # only the first address is used
    ]


def test_slice_port_is_matched_by_name_and_protocol(write):
    svc = service(ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}])
    slices = [
        endpoint_slice("web-1", ports=[{"name": "http", "port": 8080}, {"name": "dns", "port": 5353, "protocol": "TCP"}]),
        endpoint_slice(
            "web-2",
            endpoints=[{"addresses": ["10.1.0.2"]}],
            ports=[{"name": "dns", "port": 5353, "protocol": "UDP"}, {"name": "https", "port": 8443}],
        ),
    ]
    s = resolve_docs(write, svc, *slices)["default/web"]
    assert [(b.address, b.port) for b in s.ports[0].backends] == [("10.1.0.1", 8080)]
    assert [(b.address, b.port) for b in s.ports[1].backends] == [("10.1.0.2", 5353)]


def test_unnamed_service_port_matches_unnamed_slice_port(write):
    svc = service(ports=[{"port": 80, "targetPort": 8080}])
    s = resolve_docs(write, svc, endpoint_slice(ports=[{"port": 8080}]))["default/web"]
    assert [(b.address, b.port) for b in s.ports[0].backends] == [("10.1.0.1", 8080)]


def test_fqdn_slices_are_ignored_and_duplicates_counted_once(write):
    slices = [
        endpoint_slice("web-fqdn", address_type="FQDN", endpoints=[{"addresses": ["db.example.com"]}]),
        endpoint_slice("web-a", endpoints=[{"addresses": ["10.1.0.1"]}, {"addresses": ["10.1.0.2"]}]),
        endpoint_slice("web-b", endpoints=[{"addresses": ["10.1.0.2"]}, {"addresses": ["10.1.0.3"]}]),
        endpoint_slice("web-v6", address_type="IPv6", endpoints=[{"addresses": ["fd00:1::0:2"]}]),
    ]
    s = resolve_docs(write, service(), *slices)["default/web"]
    assert [b.address for b in s.ports[0].backends] == ["10.1.0.1", "10.1.0.2", "10.1.0.3", "fd00:1::2"]


def test_endpoints_subsets_matched_by_name_and_protocol(write):
    svc = service(ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}])
    ep = endpoints_object(
        subsets=[
            {"addresses": [{"ip": "10.2.0.1"}], "ports": [{"name": "http", "port": 8080}, {"name": "dns", "port": 53}]},
            {"addresses": [{"ip": "10.2.0.2"}], "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}]},
        ]
    )
    s = resolve_docs(write, svc, ep)["default/web"]
    assert [(b.address, b.port) for b in s.ports[0].backends] == [("10.2.0.1", 8080)]
    assert [(b.address, b.port) for b in s.ports[1].backends] == [("10.2.0.2", 5353)]


# ---- Backend ---------------------------------------------------------------------------------


def backend(address: str) -> Backend:
    return Backend(address, 80, "n", True, True, False, "", False)


@pytest.mark.parametrize("address, version", [("10.0.0.1", 4), ("fd00::1", 6)])
def test_backend_version(address, version):
    assert backend(address).version == version
