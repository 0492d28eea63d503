"""Cluster IPs and node ports, allocated as the API server would: deterministically."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
import yaml

from svcctl.allocate import allocate
from svcctl.load import Source, parse_source
from svcctl.options import Options
from svcctl.problems import InvalidInput
from svcctl.validate import NodePortRange, validate


def svc(name: str, spec: dict[str, Any] | None = None, namespace: str = "default") -> dict[str, Any]:
    spec = {"ports": [{"port": 80}], **(spec or {})}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def options(*cidrs: str, node_ports: NodePortRange = NodePortRange()) -> Options:
    base = Options(node_name="n1", node_port_range=node_ports)
    if not cidrs:
        return base
    return Options(node_name="n1", node_port_range=node_ports, service_cidrs=tuple(ipaddress.ip_network(c) for c in cidrs))


def alloc(docs: list[dict[str, Any]], opts: Options | None = None):
    opts = opts or options()
    objects, problems = parse_source(Source("m.yaml", yaml.safe_dump_all(docs), False))
    assert problems == []
    inventory = validate(objects, opts.node_port_range)
    return allocate(inventory, opts)


def in_net(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


MIXED = [
    svc("web"),
    svc("api", {"type": "NodePort", "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}),
    svc("lb", {"type": "LoadBalancer"}, namespace="edge"),
    svc("dual", {"ipFamilyPolicy": "PreferDualStack"}),
    svc("fixed", {"clusterIP": "10.96.0.10", "type": "NodePort", "ports": [{"port": 53, "nodePort": 30053}]}),
]


def test_deterministic_and_independent_of_input_order():
    first = alloc(MIXED)
    assert alloc(MIXED) == first
    assert alloc(list(reversed(MIXED))) == first
    # pinned values: a change in the allocator shows up here (and in every golden ruleset)
    assert first["default/fixed"].cluster_ips == ("10.96.0.10",)
    assert first["default/fixed"].node_ports == (30053,)
    assert len(first["default/dual"].cluster_ips) == 2


def test_defaults_allocate_from_the_default_service_cidrs():
    result = alloc(MIXED)
    for ref in ("default/web", "default/api", "edge/lb"):
        (ip,) = result[ref].cluster_ips
        assert in_net(ip, "10.96.0.0/12"), ip
    v4, v6 = result["default/dual"].cluster_ips
    assert in_net(v4, "10.96.0.0/12") and in_net(v6, "fd00:10:96::/112")
    all_ips = [ip for a in result.values() for ip in a.cluster_ips]
    assert len(all_ips) == len(set(all_ips))


def test_never_a_value_an_explicit_service_holds():
    alone = alloc([svc("web", {"type": "NodePort"})])
    (ip,) = alone["default/web"].cluster_ips
    (node_port,) = alone["default/web"].node_ports
    # Another Service holds exactly those values explicitly: web must get different ones,
    # whatever the order of the input.
    holder = svc("holder", {"clusterIP": ip, "type": "NodePort", "ports": [{"port": 1, "nodePort": node_port}]}, namespace="zzz")
    for docs in ([svc("web", {"type": "NodePort"}), holder], [holder, svc("web", {"type": "NodePort"})]):
        result = alloc(docs)
        assert result["zzz/holder"].cluster_ips == (ip,)
        assert result["zzz/holder"].node_ports == (node_port,)
        assert result["default/web"].cluster_ips != (ip,)
        assert result["default/web"].node_ports != (node_port,)
        assert result["default/web"].node_ports[0] in range(30000, 32768)


def test_stays_inside_a_small_service_cidr_and_reports_when_full():
    opts = options("10.0.0.0/29")
    six = [svc(f"s{i}") for i in range(6)]
    result = alloc(six, opts)
    ips = sorted(ipaddress.ip_address(a.cluster_ips[0]) for a in result.values())
    # six usable addresses: neither the network address nor the broadcast one
    assert [str(ip) for ip in ips] == [f"10.0.0.{i}" for i in range(1, 7)]
    with pytest.raises(InvalidInput) as err:
        alloc([*six, svc("s6")], opts)
    assert [p.message for p in err.value.problems] == ["Internal error: no free IP left in the service CIDR 10.0.0.0/29"]


@pytest.mark.parametrize(
    "spec, families",
    [
        ({}, (4,)),
        ({"ipFamilyPolicy": "SingleStack"}, (4,)),
        ({"ipFamilies": ["IPv6"]}, (6,)),
        ({"ipFamilyPolicy": "PreferDualStack"}, (4, 6)),
        ({"ipFamilyPolicy": "RequireDualStack"}, (4, 6)),
        ({"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"]}, (6, 4)),
        ({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6"]}, (6, 4)),
        ({"ipFamilyPolicy": "PreferDualStack", "clusterIP": "10.96.5.5"}, (4, 6)),
    ],
)
def test_dual_stack_policies_on_a_dual_stack_cluster(spec, families):
    (result,) = alloc([svc("s", spec)]).values()
    assert tuple(ipaddress.ip_address(ip).version for ip in result.cluster_ips) == families
    if "clusterIP" in spec:
        assert result.cluster_ips[0] == spec["clusterIP"]


def test_prefer_dual_stack_on_a_single_stack_cluster_gets_one():
    (result,) = alloc([svc("s", {"ipFamilyPolicy": "PreferDualStack"})], options("10.0.0.0/24")).values()
    assert len(result.cluster_ips) == 1 and in_net(result.cluster_ips[0], "10.0.0.0/24")


@pytest.mark.parametrize(
    "spec",
    [
        {"ipFamilyPolicy": "RequireDualStack"},
        {"ipFamilies": ["IPv6"]},
        {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6"]},  # a family asked for must exist
    ],
)
def test_a_family_the_cidrs_do_not_cover_is_an_error(spec):
    with pytest.raises(InvalidInput) as err:
        alloc([svc("s", spec)], options("10.0.0.0/24"))
    (problem,) = err.value.problems
    assert problem.path == ("spec", "ipFamilies")
    assert problem.message == (
        'Invalid value: "IPv6": the service CIDRs (10.0.0.0/24) have no IPv6 range; give one with --service-cidr'
    )


def test_ipv6_primary_when_the_first_service_cidr_is_ipv6():
    opts = options("fd00:1::/112", "10.0.0.0/16")
    result = alloc([svc("single"), svc("dual", {"ipFamilyPolicy": "PreferDualStack"})], opts)
    (single,) = result["default/single"].cluster_ips
    assert in_net(single, "fd00:1::/112")
    v6, v4 = result["default/dual"].cluster_ips
    assert in_net(v6, "fd00:1::/112") and in_net(v4, "10.0.0.0/16")


def test_headless_and_external_name_get_no_ip():
    result = alloc([svc("h", {"clusterIP": "None"}), svc("x", {"type": "ExternalName", "externalName": "a.example"})])
    assert result["default/h"].cluster_ips == ()
    assert result["default/x"].cluster_ips == ()
    assert result["default/x"].node_ports == (0,)


def test_node_ports_within_the_configured_range():
    opts = options(node_ports=NodePortRange(31000, 31004))
    docs = [svc(f"n{i}", {"type": "NodePort"}) for i in range(5)]
    result = alloc(docs, opts)
    assert sorted(a.node_ports[0] for a in result.values()) == [31000, 31001, 31002, 31003, 31004]
    with pytest.raises(InvalidInput) as err:
        alloc([*docs, svc("n5", {"type": "NodePort"})], opts)
    assert [p.message for p in err.value.problems] == ["Internal error: no free node port left in 31000-31004"]


def test_cluster_ip_services_get_no_node_port():
    assert alloc([svc("c")])["default/c"].node_ports == (0,)


def test_tcp_and_udp_of_one_port_share_a_node_port():
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153},
    ]
    (result,) = alloc([svc("dns", {"type": "NodePort", "ports": ports})]).values()
    udp, tcp, metrics = result.node_ports
    assert udp == tcp and metrics != udp
    assert all(30000 <= p <= 32767 for p in result.node_ports)


def test_a_port_takes_the_node_port_its_sibling_asked_for():
    # initNodePorts (findRequestedNodePort): TCP 53 without nodePort takes the one UDP 53 asked
    # for, even though UDP 53 comes later in the list.
    ports = [{"name": "dns-tcp", "port": 53}, {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]
    (result,) = alloc([svc("dns", {"type": "NodePort", "ports": ports})]).values()
    assert result.node_ports == (30053, 30053)


def test_load_balancer_without_node_ports():
    ports = [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30081}]
    result = alloc(
        [
            svc("off", {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False, "ports": ports}),
            svc("on", {"type": "LoadBalancer", "ports": ports[:1]}),
        ]
    )
    assert result["default/off"].node_ports == (0, 30081)  # an explicit one is kept
    assert result["default/on"].node_ports[0] in range(30000, 32768)
