"""The API server's defaulting, applied when a manifest becomes a typed object."""

from __future__ import annotations

import pytest

from svcctl.model import (
    EndpointSlice,
    IPFamilyPolicy,
    Node,
    Pod,
    Protocol,
    Service,
    ServiceCIDR,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
)


def svc(spec: dict, **meta) -> Service:
    return Service.model_validate(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", **meta}, "spec": spec}
    )


def test_minimal_service_defaults():
    s = svc({"ports": [{"port": 80}]})
    assert s.metadata.namespace == "default"
    assert s.spec.type is ServiceType.CLUSTER_IP
    port = s.spec.ports[0]
    assert (port.name, port.protocol, port.port, port.target_port, port.node_port) == ("", Protocol.TCP, 80, 80, 0)
    assert s.spec.session_affinity is SessionAffinity.NONE
    assert s.spec.affinity_timeout is None
    assert s.spec.session_affinity_config is None
    assert s.spec.internal_traffic_policy is TrafficPolicy.CLUSTER
    assert s.spec.external_traffic_policy is None  # not reachable from outside
    assert s.spec.allocate_load_balancer_node_ports is None
    assert s.spec.ip_family_policy is None
    assert (s.spec.cluster_ip, s.spec.cluster_ips) == ("", [])


@pytest.mark.parametrize("target", [None, 0, ""])
def test_unset_target_port_is_port(target):
    assert svc({"ports": [{"port": 8443, "targetPort": target}]}).spec.ports[0].target_port == 8443


def test_named_and_numeric_target_ports_are_kept():
    s = svc({"ports": [{"name": "a", "port": 80, "targetPort": "http"}, {"name": "b", "port": 81, "targetPort": 9090}]})
    assert [p.target_port for p in s.spec.ports] == ["http", 9090]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"type": "NodePort"}, TrafficPolicy.CLUSTER),
        ({"type": "LoadBalancer"}, TrafficPolicy.CLUSTER),
        ({"type": "ClusterIP", "externalIPs": ["192.0.2.1"]}, TrafficPolicy.CLUSTER),
        ({"type": "ClusterIP"}, None),
        ({"type": "ClusterIP", "externalIPs": []}, None),
        ({"type": "ExternalName", "externalName": "example.com"}, None),
        ({"type": "LoadBalancer", "externalTrafficPolicy": "Local"}, TrafficPolicy.LOCAL),
    ],
)
def test_external_traffic_policy_default(spec, expected):
    assert svc({"ports": [{"port": 80}], **spec}).spec.external_traffic_policy is expected


def test_internal_traffic_policy_default():
    assert svc({"ports": [{"port": 80}], "type": "NodePort"}).spec.internal_traffic_policy is TrafficPolicy.CLUSTER
    assert svc({"ports": [{"port": 80}], "internalTrafficPolicy": "Local"}).spec.internal_traffic_policy is TrafficPolicy.LOCAL
    assert svc({"type": "ExternalName", "externalName": "a.b"}).spec.internal_traffic_policy is None


def test_allocate_load_balancer_node_ports_default():
    assert svc({"type": "LoadBalancer", "ports": [{"port": 80}]}).spec.allocate_load_balancer_node_ports is True
    lb = svc({"type": "LoadBalancer", "ports": [{"port": 80}], "allocateLoadBalancerNodePorts": False})
    assert lb.spec.allocate_load_balancer_node_ports is False
    assert svc({"type": "NodePort", "ports": [{"port": 80}]}).spec.allocate_load_balancer_node_ports is None


def test_client_ip_affinity_timeout_default_and_explicit():
    s = svc({"ports": [{"port": 80}], "sessionAffinity": "ClientIP"})
    assert s.spec.affinity_timeout == 10800
    assert s.spec.session_affinity_config.client_ip.timeout_seconds == 10800
    s = svc({"ports": [{"port": 80}], "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {}}})
    assert s.spec.affinity_timeout == 10800
    s = svc({"ports": [{"port": 80}], "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}})
    assert s.spec.affinity_timeout == 60


def test_client_ip_timeout_zero_is_not_defaulted():
    # The API server defaults only a missing (nil) timeout; 0 stays 0 and validation refuses it.
    s = svc({"ports": [{"port": 80}], "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}})
    assert s.spec.affinity_timeout == 0


@pytest.mark.parametrize("namespace", [None, ""])
def test_namespace_defaults_to_default(namespace):
    assert svc({"ports": [{"port": 80}]}, namespace=namespace).metadata.namespace == "default"
    assert svc({"ports": [{"port": 80}]}, namespace="prod").metadata.namespace == "prod"


def test_null_fields_are_absent():
    s = svc(
        {
            "type": None,
            "selector": None,
            "clusterIP": None,
            "clusterIPs": None,
            "externalIPs": None,
            "sessionAffinity": None,
            "internalTrafficPolicy": None,
            "ports": [{"name": None, "port": 80, "protocol": None, "targetPort": None, "nodePort": None}],
        },
        labels=None,
        annotations=None,
    )
    assert s.spec.type is ServiceType.CLUSTER_IP
    assert s.spec.selector is None
    assert s.spec.cluster_ips == [] and s.spec.external_ips == []
    assert s.spec.session_affinity is SessionAffinity.NONE
    assert s.spec.internal_traffic_policy is TrafficPolicy.CLUSTER
    port = s.spec.ports[0]
    assert (port.name, port.protocol, port.target_port, port.node_port) == ("", Protocol.TCP, 80, 0)
    assert s.metadata.labels == {}


def test_cluster_ip_and_cluster_ips_are_kept_in_step():
    assert svc({"ports": [{"port": 80}], "clusterIP": "10.0.0.1"}).spec.cluster_ips == ["10.0.0.1"]
    s = svc({"ports": [{"port": 80}], "clusterIPs": ["fd00::1", "10.0.0.1"], "ipFamilyPolicy": "PreferDualStack"})
    assert s.spec.cluster_ip == "fd00::1"
    assert s.spec.ip_family_policy is IPFamilyPolicy.PREFER_DUAL_STACK
    assert svc({"ports": [{"port": 80}], "clusterIP": "None"}).spec.headless


def endpoint_slice(endpoints: list[dict], **fields) -> EndpointSlice:
    return EndpointSlice.model_validate(
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": endpoints, **fields}
    )


def test_endpoint_slice_condition_defaults():
    es = endpoint_slice(
        [
            {"addresses": ["10.1.0.1"]},
            {"addresses": ["10.1.0.2"], "conditions": {}},
            {"addresses": ["10.1.0.3"], "conditions": {"ready": None, "serving": None, "terminating": None}},
            {"addresses": ["10.1.0.4"], "conditions": {"ready": False, "serving": True, "terminating": True}},
        ],
        ports=None,
    )
    assert [(e.ready, e.serving, e.terminating) for e in es.endpoints] == [
        (True, True, False),
        (True, True, False),
        (True, True, False),
        (False, True, True),
    ]
    assert es.ports == []


def test_pod_ips_and_readiness():
    def pod(status: dict) -> Pod:
        return Pod.model_validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": status, "spec": {"unknownField": 1}})

    assert pod({"podIP": "10.0.0.1"}).ips == ["10.0.0.1"]
    assert pod({"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}).ips == ["10.0.0.1", "fd00::1"]
    assert pod({}).ips == []
    assert pod({"conditions": [{"type": "Ready", "status": "True"}]}).ready
    assert not pod({"conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "True"}]}).ready
    assert not pod({}).ready


def test_endpoint_hints_are_kept_for_topology_aware_routing():
    es = endpoint_slice(
        [
            {"addresses": ["10.1.0.1"], "zone": "a", "hints": {"forZones": [{"name": "a"}, {"name": "b"}], "forNodes": [{"name": "n1"}]}},
            {"addresses": ["10.1.0.2"], "hints": {"forZones": None}},
            {"addresses": ["10.1.0.3"]},
        ]
    )
    assert [(e.zone_hints, e.node_hints) for e in es.endpoints] == [(("a", "b"), ("n1",)), ((), ()), ((), ())]


def test_pod_hostname_and_subdomain():
    pod = Pod.model_validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"hostname": "web-0", "subdomain": "web"}})
    assert (pod.spec.hostname, pod.spec.subdomain) == ("web-0", "web")
    bare = Pod.model_validate({"apiVersion": "v1", "kind": "Pod"})
    assert (bare.spec.hostname, bare.spec.subdomain) == ("", "")


def test_cluster_scoped_kinds_drop_a_namespace_and_name_themselves_alone():
    node = Node.model_validate({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "x"}, "status": {"capacity": {"cpu": "4"}}})
    cidr = ServiceCIDR.model_validate({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "c"}, "spec": {"cidrs": ["10.0.0.0/8"]}})
    assert (node.ref, node.metadata.namespace, node.zone) == ("n1", "", "")
    assert (cidr.ref, cidr.metadata.namespace) == ("c", "")


@pytest.mark.parametrize("status", [None, {}, {"loadBalancer": {}}, {"loadBalancer": {"ingress": []}}])
def test_a_service_without_load_balancer_status_shares_one_empty_status(status):
    extra = {} if status is None else {"status": status}
    s = Service.model_validate({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}, **extra})
    assert s.status.load_balancer.ingress == [] and s.status.conditions is None
    if status != {"loadBalancer": {"ingress": []}}:  # what a dump has, or nothing: no new objects
        assert s.status is svc({}).status


def test_a_load_balancer_status_is_read_and_checked_as_before():
    given = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}
    s = Service.model_validate({**given, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}})
    assert s.status.load_balancer.ingress[0].ip == "192.0.2.1" and s.status is not svc({}).status
    with pytest.raises(ValueError, match="status.loadBalancer.bogus"):
        Service.model_validate({**given, "status": {"loadBalancer": {"bogus": 1}}})
