"""Plan decisions (svcctl/plan) as the nftables layout writes them (svcctl/nftables/layout.py), on small resolved inputs: the cascade arithmetic, which chains
exist for each policy combination, which map each address lands in with which verdict, hairpin
and affinity sets, names, the source-range firewall, address families. docs/nft-layout.md is the
specification; the golden cases show the same decisions as rendered text."""

from __future__ import annotations

import ipaddress
import re
from fractions import Fraction

import pytest

from svcctl.model import Protocol, ServiceType, TrafficPolicy
from svcctl.options import Options
from svcctl.nftables.layout import layout
from svcctl.nftables.names import NAME_MAX, object_name
from svcctl.nftables.objects import DROP, REJECT, Family, Ruleset, Table, Verdict
from svcctl.plan import plan as neutral_plan
from svcctl.plan.endpoints import cascade
from svcctl.plan.model import MasqueradeScope
from svcctl.resolve import Backend, ResolvedPort, ResolvedService, EndpointSource

NODE = "node-1"
CIDR = (ipaddress.ip_network("10.244.0.0/16"),)
OPTIONS = Options(node_name=NODE, cluster_cidrs=CIDR)
NAME_PATTERN = re.compile(r"^[a-z]+-[A-Z2-7]{8}-[a-z0-9./-]+$")


# ---- building blocks ------------------------------------------------------------------------


def plan(services: list[ResolvedService], options: Options) -> Ruleset:
    return layout(neutral_plan(services, options), options.table)


def ep(address: str, node: str = "node-2", port: int = 8080, ready: bool = True, serving: bool = True,
       terminating: bool = False) -> Backend:
    return Backend(address, port, node, ready, serving, terminating, "", bool(node) and node == NODE)


def svc(
    name: str = "web",
    namespace: str = "default",
    type: ServiceType = ServiceType.CLUSTER_IP,
    cluster_ips: tuple[str, ...] = ("10.96.0.10",),
    backends: tuple[Backend, ...] = (),
    etp: TrafficPolicy | None = None,
    itp: TrafficPolicy = TrafficPolicy.CLUSTER,
    external_ips: tuple[str, ...] = (),
    lb_ips: tuple[str, ...] = (),
    ranges: tuple[str, ...] = (),
    affinity: int | None = None,
    node_port: int = 0,
    protocol: Protocol = Protocol.TCP,
    port: int = 80,
    port_name: str = "http",
    headless: bool = False,
) -> ResolvedService:
    external = type in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER) or bool(external_ips)
    return ResolvedService(
        namespace=namespace,
        name=name,
        type=type,
        cluster_ips=cluster_ips,
        external_ips=external_ips,
        load_balancer_ips=lb_ips,
        source_ranges=tuple(ipaddress.ip_network(r, strict=False) for r in ranges),
        external_traffic_policy=etp or (TrafficPolicy.CLUSTER if external else None),
        internal_traffic_policy=itp,
        affinity_timeout=affinity,
        headless=headless,
        external_name="",
        endpoint_source=EndpointSource.ENDPOINTS,
        ports=(ResolvedPort(port_name, protocol, port, 8080, node_port, tuple(backends)),),
    )


def table(ruleset: Ruleset, family: Family = Family.IP) -> Table:
    return next(t for t in ruleset.tables if t.family is family)


def elements(t: Table, set_name: str) -> dict[tuple[str, ...], Verdict | None]:
    named = next(s for s in t.sets if s.name == set_name)
    return {e.key: e.verdict for e in named.elements}


def chain_kinds(t: Table) -> set[str]:
    return {c.name.split("-", 1)[0] for c in (*t.endpoint_chains, *t.external_chains)}


def chain(t: Table, kind: str):  # type: ignore[no-untyped-def]
    found = [c for c in (*t.endpoint_chains, *t.external_chains) if c.name.startswith(kind + "-")]
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def targets(t: Table, kind: str) -> list[str]:
    return [p.target for p in chain(t, kind).picks]


LOCAL_A, LOCAL_B, REMOTE = ep("10.244.1.2", NODE), ep("10.244.1.3", NODE), ep("10.244.2.4", "node-2")


# ---- the cascade ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 33])
def test_cascade_moduli_and_equal_shares(n: int) -> None:
    backends = [ep(f"10.244.0.{i + 1}") for i in range(n)]
    picks = cascade(backends)
    assert [p.modulus for p in picks] == [*range(n, 1, -1), None]  # N, N-1, ..., 2, unconditional
    assert [(p.endpoint.address, p.endpoint.port) for p in picks] == [(f"10.244.0.{i + 1}", 8080) for i in range(n)]
    # Rule i is reached when no earlier rule matched and then matches with 1/modulus: 1/N each.
    reach, shares = Fraction(1), []
    for p in picks:
        chance = Fraction(1, p.modulus) if p.modulus else Fraction(1)
        shares.append(reach * chance)
        reach -= reach * chance
    assert shares == [Fraction(1, n)] * n
    assert reach == 0


def test_cascade_ipv6_targets_are_bracketed() -> None:
    t = table(plan([svc(cluster_ips=("fd00:10:96::10",), backends=(ep("fd00:10:244::11"), ep("fd00:10:244::12", port=9090)))], OPTIONS), Family.IP6)
    assert targets(t, "svc") == ["[fd00:10:244::11]:8080", "[fd00:10:244::12]:9090"]


def test_service_chain_holds_the_cascade() -> None:
    t = table(plan([svc(backends=(LOCAL_A, LOCAL_B, REMOTE))], OPTIONS))
    c = chain(t, "svc")
    assert [p.modulus for p in c.picks] == [3, 2, None]
    assert c.protocol == "tcp"
    assert c.comment == "default/web:http/tcp"


# ---- which chains exist ---------------------------------------------------------------------

NP = ServiceType.NODE_PORT
CL, LO = TrafficPolicy.CLUSTER, TrafficPolicy.LOCAL


@pytest.mark.parametrize(
    "type, etp, itp, backends, kinds",
    [
        (ServiceType.CLUSTER_IP, None, CL, (LOCAL_A, REMOTE), {"svc"}),
        (ServiceType.CLUSTER_IP, None, LO, (LOCAL_A, REMOTE), {"local"}),  # no svc-: nothing else needs it
        (ServiceType.CLUSTER_IP, None, LO, (REMOTE,), set()),
        (ServiceType.CLUSTER_IP, None, CL, (), set()),
        (NP, CL, CL, (LOCAL_A, REMOTE), {"svc", "ext"}),
        (NP, LO, CL, (LOCAL_A, REMOTE), {"svc", "local", "ext"}),
        (NP, LO, CL, (REMOTE,), {"svc", "ext"}),  # ext- keeps the pod/node short-circuits
        (NP, CL, LO, (LOCAL_A, REMOTE), {"svc", "local", "ext"}),  # ClusterIP local-, ext- all
        (NP, CL, LO, (REMOTE,), {"svc", "ext"}),
        (NP, LO, LO, (LOCAL_A, REMOTE), {"svc", "local", "ext"}),
        (NP, LO, CL, (), set()),  # no endpoints at all: rejects only
    ],
)
def test_chains_per_policy(type, etp, itp, backends, kinds) -> None:  # type: ignore[no-untyped-def]
    t = table(plan([svc(type=type, etp=etp, itp=itp, backends=backends, node_port=30080 if type is NP else 0)], OPTIONS))
    assert chain_kinds(t) == kinds


def test_local_chain_has_only_local_endpoints() -> None:
    t = table(plan([svc(type=NP, etp=LO, node_port=30080, backends=(LOCAL_A, LOCAL_B, REMOTE))], OPTIONS))
    assert targets(t, "local") == ["10.244.1.2:8080", "10.244.1.3:8080"]
    assert targets(t, "svc") == ["10.244.1.2:8080", "10.244.1.3:8080", "10.244.2.4:8080"]


def test_external_chain_cluster_policy_marks_then_goes_to_all() -> None:
    t = table(plan([svc(type=NP, node_port=30080, backends=(REMOTE,))], OPTIONS))
    ext = chain(t, "ext")
    assert (ext.mark_all, ext.pods_to, ext.node_to, ext.then_to) == (True, "", "", chain(t, "svc").name)


def test_external_chain_local_policy_routes() -> None:
    t = table(plan([svc(type=NP, etp=LO, node_port=30080, backends=(LOCAL_A, REMOTE))], OPTIONS))
    ext, all_, local = chain(t, "ext"), chain(t, "svc").name, chain(t, "local").name
    assert (ext.mark_all, ext.pods_to, ext.node_to, ext.then_to) == (False, all_, all_, local)
    # No cluster CIDR: pods cannot be told from outside clients, no pod short-circuit.
    t = table(plan([svc(type=NP, etp=LO, node_port=30080, backends=(LOCAL_A, REMOTE))], Options(node_name=NODE)))
    assert chain(t, "ext").pods_to == ""
    # --masquerade-all marks traffic to cluster IPs: external traffic under Local policy keeps
    # its source (kube-proxy's TestInternalExternalMasquerade), the ClusterIP masquerades all.
    t = table(plan([svc(type=NP, etp=LO, node_port=30080, backends=(LOCAL_A,))], Options(node_name=NODE, cluster_cidrs=CIDR, masquerade_all=True)))
    assert chain(t, "ext").mark_all is False
    assert t.masquerade is MasqueradeScope.ALL


def test_external_chain_local_policy_without_local_endpoints_has_no_final_goto() -> None:
    t = table(plan([svc(type=NP, etp=LO, node_port=30080, backends=(REMOTE,))], OPTIONS))
    assert chain(t, "ext").then_to == ""


# ---- map placement and verdicts -------------------------------------------------------------


def goto(t: Table, kind: str) -> Verdict:
    return Verdict.goto(chain(t, kind).name)


def test_clusterip_goes_to_service_chain() -> None:
    t = table(plan([svc(backends=(REMOTE,))], OPTIONS))
    assert elements(t, "service-ips") == {("10.96.0.10", "tcp", "80"): goto(t, "svc")}
    assert elements(t, "cluster-ips") == {("10.96.0.10",): None}
    assert elements(t, "no-endpoint-services") == {}


def test_internal_local_goes_to_local_chain_or_drop() -> None:
    t = table(plan([svc(itp=LO, backends=(LOCAL_A, REMOTE))], OPTIONS))
    assert elements(t, "service-ips") == {("10.96.0.10", "tcp", "80"): goto(t, "local")}
    t = table(plan([svc(itp=LO, backends=(REMOTE,))], OPTIONS))
    assert elements(t, "service-ips") == {}
    assert elements(t, "cluster-ips") == {("10.96.0.10",): None}  # whatever its ports lead to
    assert elements(t, "no-endpoint-services") == {("10.96.0.10", "tcp", "80"): DROP}


def test_external_addresses_and_nodeport_go_to_external_chain() -> None:
    s = svc(type=ServiceType.LOAD_BALANCER, node_port=30080, external_ips=("203.0.113.1",), lb_ips=("198.51.100.1",), backends=(REMOTE,))
    t = table(plan([s], OPTIONS))
    assert elements(t, "service-ips") == {
        ("10.96.0.10", "tcp", "80"): goto(t, "svc"),
        ("203.0.113.1", "tcp", "80"): goto(t, "ext"),
        ("198.51.100.1", "tcp", "80"): goto(t, "ext"),
    }
    assert elements(t, "service-nodeports") == {("tcp", "30080"): goto(t, "ext")}
    assert elements(t, "cluster-ips") == {("10.96.0.10",): None}  # only ClusterIPs


def test_no_endpoints_rejects_every_address_and_the_nodeport() -> None:
    s = svc(type=ServiceType.LOAD_BALANCER, node_port=30080, external_ips=("203.0.113.1",), lb_ips=("198.51.100.1",))
    t = table(plan([s], OPTIONS))
    assert elements(t, "no-endpoint-services") == {
        ("10.96.0.10", "tcp", "80"): REJECT,
        ("203.0.113.1", "tcp", "80"): REJECT,
        ("198.51.100.1", "tcp", "80"): REJECT,
    }
    assert elements(t, "no-endpoint-nodeports") == {("tcp", "30080"): REJECT}
    assert elements(t, "service-ips") == elements(t, "service-nodeports") == {}
    assert elements(t, "cluster-ips") == {("10.96.0.10",): None}  # other ports of it: rejected too
    assert REJECT == Verdict.goto("reject-chain")


def test_external_local_without_local_endpoints_drops_external_addresses() -> None:
    s = svc(type=ServiceType.LOAD_BALANCER, etp=LO, node_port=30080, lb_ips=("198.51.100.1",), backends=(REMOTE,))
    t = table(plan([s], OPTIONS))
    assert elements(t, "no-endpoint-services") == {("198.51.100.1", "tcp", "80"): DROP}
    assert elements(t, "no-endpoint-nodeports") == {("tcp", "30080"): DROP}
    # still dispatched: pods and the node reach all endpoints through the ext- chain
    assert elements(t, "service-ips")[("198.51.100.1", "tcp", "80")] == goto(t, "ext")
    assert elements(t, "service-nodeports") == {("tcp", "30080"): goto(t, "ext")}
    assert elements(t, "service-ips")[("10.96.0.10", "tcp", "80")] == goto(t, "svc")


def test_terminating_fallback() -> None:
    serving = ep("10.244.2.5", terminating=True, ready=False)
    not_serving = ep("10.244.2.6", terminating=True, ready=False, serving=False)
    t = table(plan([svc(backends=(serving, not_serving))], OPTIONS))
    assert targets(t, "svc") == ["10.244.2.5:8080"]
    t = table(plan([svc(backends=(REMOTE, serving))], OPTIONS))  # a ready one: no fallback
    assert targets(t, "svc") == ["10.244.2.4:8080"]
    t = table(plan([svc(backends=(not_serving,))], OPTIONS))
    assert elements(t, "no-endpoint-services") == {("10.96.0.10", "tcp", "80"): REJECT}


def test_nodeport_only_for_nodeport_and_loadbalancer_types() -> None:
    t = table(plan([svc(node_port=30080, backends=(REMOTE,))], OPTIONS))  # a stray nodePort on ClusterIP
    assert elements(t, "service-nodeports") == {}
    assert chain_kinds(t) == {"svc"}


def test_shared_external_address_goes_to_the_first_service() -> None:
    a = svc("a", cluster_ips=("10.96.0.1",), external_ips=("203.0.113.1",), backends=(REMOTE,))
    b = svc("b", cluster_ips=("10.96.0.2",), external_ips=("203.0.113.1", "10.96.0.1"), backends=(LOCAL_A,))
    t = table(plan([a, b], OPTIONS))
    ips = elements(t, "service-ips")
    assert ips[("203.0.113.1", "tcp", "80")].chain.endswith("default/a/tcp/http")
    assert ips[("10.96.0.1", "tcp", "80")].chain.endswith("default/a/tcp/http")
    assert len(ips) == 3  # a's ClusterIP and externalIP, b's ClusterIP


def test_a_clusterip_is_never_taken_over_by_another_services_external_ip() -> None:
    # CVE-2020-8554: "a" (first in order) lists b's ClusterIP as externalIP; b keeps it.
    a = svc("a", cluster_ips=("10.96.0.1",), external_ips=("10.96.0.2",), backends=(REMOTE,))
    b = svc("b", cluster_ips=("10.96.0.2",), backends=(LOCAL_A,))
    ruleset = plan([a, b], OPTIONS)
    ips = elements(table(ruleset), "service-ips")
    assert ips[("10.96.0.2", "tcp", "80")].chain.endswith("default/b/tcp/http")
    assert ruleset.warnings == ("IPv4: Service default/a: address 10.96.0.2 tcp 80 is already Service default/b's: no rule for it here",)


def test_headless_and_unproxied_services_get_nothing() -> None:
    t = table(plan([svc(headless=True, cluster_ips=(), backends=(REMOTE,)),
                    svc("name", type=ServiceType.EXTERNAL_NAME, cluster_ips=())], OPTIONS))
    assert chain_kinds(t) == set()
    assert all(not s.elements for s in t.sets if s.name not in ("cluster-cidrs", "service-cidrs"))


# ---- hairpin and affinity -------------------------------------------------------------------


def test_hairpin_only_local_or_unknown_node_endpoints() -> None:
    unknown = ep("192.0.2.10", node="")
    t = table(plan([svc(backends=(LOCAL_A, REMOTE, unknown)), svc("other", cluster_ips=("10.96.0.11",), backends=(LOCAL_A,))], OPTIONS))
    assert elements(t, "hairpin") == {("10.244.1.2", "10.244.1.2"): None, ("192.0.2.10", "192.0.2.10"): None}
    assert [e.key for e in next(s for s in t.sets if s.name == "hairpin").elements] == [
        ("10.244.1.2", "10.244.1.2"), ("192.0.2.10", "192.0.2.10")]  # once, in address order


def test_affinity_set_per_endpoint() -> None:
    t = table(plan([svc(affinity=30, backends=(LOCAL_A, REMOTE))], OPTIONS))
    aff = [s for s in t.sets if s.dynamic]
    assert [s.name.split("/")[-1] for s in sorted(aff, key=lambda s: s.name.split("/")[-1])] == ["10.244.1.2-8080", "10.244.2.4-8080"]
    assert all(s.name.startswith("aff-") and s.key_type == ("ipv4_addr",) and not s.elements for s in aff)
    c = chain(t, "svc")
    assert c.affinity_timeout == 30
    assert {p.affinity for p in c.picks} == {s.name for s in aff}
    assert aff[0] not in t.static_sets  # an apply never flushes them
    # the same endpoint in the local- chain uses the same set
    t = table(plan([svc(type=NP, etp=LO, node_port=30080, affinity=30, backends=(LOCAL_A, REMOTE))], OPTIONS))
    assert chain(t, "local").picks[0].affinity == chain(t, "svc").picks[0].affinity


def test_affinity_for_local_fallback_endpoint() -> None:
    """ITP Local, the local endpoint only serving+terminating, a remote one ready: the local-
    chain falls back to the local one, which needs an affinity set (and a hairpin element)."""
    local_draining = ep("10.244.1.9", NODE, ready=False, terminating=True)
    t = table(plan([svc(itp=LO, affinity=60, backends=(local_draining, REMOTE))], OPTIONS))
    picks = chain(t, "local").picks
    assert [p.target for p in picks] == ["10.244.1.9:8080"]
    aff = [s.name for s in t.sets if s.dynamic]
    assert aff == [picks[0].affinity]
    assert elements(t, "hairpin") == {("10.244.1.9", "10.244.1.9"): None}


def test_no_affinity_sets_without_client_ip_affinity() -> None:
    t = table(plan([svc(backends=(LOCAL_A, REMOTE))], OPTIONS))
    assert not [s for s in t.sets if s.dynamic]
    assert all(p.affinity is None for p in chain(t, "svc").picks)


# ---- names ----------------------------------------------------------------------------------


def all_names(ruleset: Ruleset) -> list[str]:
    names = []
    for t in ruleset.tables:
        names += [c.name for c in (*t.endpoint_chains, *t.external_chains)]
        names += [s.name for s in t.sets if s.dynamic]
    return names


def big_ruleset() -> Ruleset:
    long = "a" * 63
    v6 = ep("fd00:10:244:1:2:3:4:5", NODE, port=65535)
    services = [
        svc(long, long, type=ServiceType.LOAD_BALANCER, etp=LO, node_port=30080, port_name="b" * 15,
            protocol=Protocol.SCTP, cluster_ips=("fd00:10:96::1",), lb_ips=("2001:db8::1",), affinity=10,
            backends=(v6, ep("fd00:10:244:2::1", "node-2"))),
        svc(type=NP, etp=LO, node_port=30081, affinity=10, backends=(LOCAL_A, REMOTE)),
        svc("n", port_name="", port=53, protocol=Protocol.UDP, backends=(REMOTE,)),
    ]
    return plan(services, OPTIONS)


def test_names_match_the_pattern_and_fit() -> None:
    names = all_names(big_ruleset())
    assert {n.split("-", 1)[0] for n in names} == {"svc", "local", "ext", "aff"}
    for name in names:
        assert NAME_PATTERN.match(name), name
        assert len(name) <= NAME_MAX
        assert ":" not in name  # nft refuses ':' in set names
    assert len(set(names)) == len(names)


def test_names_are_deterministic_and_readable() -> None:
    assert all_names(big_ruleset()) == all_names(big_ruleset())
    assert big_ruleset() == big_ruleset()
    name = object_name("aff", "default/web/tcp/http/fd00::1-80")
    assert name.endswith("-default/web/tcp/http/fd00..1-80")
    assert object_name("svc", "ns/s/udp/53") == object_name("svc", "ns/s/udp/53")
    assert object_name("svc", "ns/s/udp/53") != object_name("svc", "ns/s/udp/54")


def test_name_is_capped() -> None:
    assert len(object_name("aff", "x" * 400)) == NAME_MAX


# ---- firewall (loadBalancerSourceRanges) ----------------------------------------------------


def lb(ranges: tuple[str, ...], lb_ips: tuple[str, ...] = ("198.51.100.1",), **kw) -> ResolvedService:  # type: ignore[no-untyped-def]
    return svc(type=ServiceType.LOAD_BALANCER, node_port=30080, lb_ips=lb_ips, ranges=ranges, backends=(REMOTE,), **kw)


def test_firewall_elements() -> None:
    t = table(plan([lb(("192.168.0.0/24", "10.0.0.0/8", "10.1.0.0/16"), external_ips=("203.0.113.1",))], OPTIONS))
    assert elements(t, "firewall-ips") == {("198.51.100.1", "tcp", "80"): None}  # LB IPs only, not externalIPs
    assert list(elements(t, "firewall-allow")) == [  # overlapping ranges merged, in address order
        ("198.51.100.1", "tcp", "80", "10.0.0.0/8"),
        ("198.51.100.1", "tcp", "80", "192.168.0.0/24"),
    ]


def test_firewall_allow_any() -> None:
    for ranges in [(), ("0.0.0.0/0", "10.0.0.0/8"), ("2001:db8::/32",)]:  # none of this family counts as none
        t = table(plan([lb(ranges)], OPTIONS))
        assert elements(t, "firewall-ips") == elements(t, "firewall-allow") == {}, ranges


def test_firewall_per_family() -> None:
    s = lb(("10.0.0.0/8", "2001:db8::/32"), lb_ips=("198.51.100.1", "2001:db8:ff::1"), cluster_ips=("10.96.0.10", "fd00:10:96::10"))
    r = plan([s], OPTIONS)
    assert list(elements(table(r), "firewall-allow")) == [("198.51.100.1", "tcp", "80", "10.0.0.0/8")]
    assert list(elements(table(r, Family.IP6), "firewall-allow")) == [("2001:db8:ff::1", "tcp", "80", "2001:db8::/32")]


# ---- families and masquerade ----------------------------------------------------------------


def test_single_family_services_stay_in_their_table() -> None:
    v4 = svc("v4", cluster_ips=("10.96.0.10",), external_ips=("2001:db8::1",), backends=(REMOTE, ep("fd00::5")))
    v6 = svc("v6", cluster_ips=("fd00:10:96::10",), backends=(ep("fd00::5"), REMOTE))
    r = plan([v4, v6], OPTIONS)
    ip, ip6 = table(r), table(r, Family.IP6)
    assert [c.comment for c in ip.endpoint_chains] == ["default/v4:http/tcp"]
    assert [c.comment for c in ip6.endpoint_chains] == ["default/v6:http/tcp"]
    assert targets(ip, "svc") == ["10.244.2.4:8080"]
    assert targets(ip6, "svc") == ["[fd00::5]:8080"]
    assert list(elements(ip, "service-ips")) == [("10.96.0.10", "tcp", "80")]  # the IPv6 externalIP is not here
    assert list(elements(ip6, "service-ips")) == [("fd00:10:96::10", "tcp", "80")]


def test_dual_stack_service_in_both_tables() -> None:
    s = svc(cluster_ips=("10.96.0.10", "fd00:10:96::10"), backends=(REMOTE, ep("fd00::5")))
    r = plan([s], OPTIONS)
    assert targets(table(r), "svc") == ["10.244.2.4:8080"]
    assert targets(table(r, Family.IP6), "svc") == ["[fd00::5]:8080"]
    # with endpoints of one family only, the other table rejects
    r = plan([svc(cluster_ips=("10.96.0.10", "fd00:10:96::10"), backends=(REMOTE,))], OPTIONS)
    assert elements(table(r, Family.IP6), "no-endpoint-services") == {("fd00:10:96::10", "tcp", "80"): REJECT}


def test_masquerade_scope_and_cidr_sets() -> None:
    s = [svc(backends=(REMOTE,))]
    assert table(plan(s, Options(node_name=NODE))).masquerade is MasqueradeScope.NONE
    assert table(plan(s, OPTIONS)).masquerade is MasqueradeScope.OUTSIDE_CLUSTER
    assert table(plan(s, Options(node_name=NODE, masquerade_all=True))).masquerade is MasqueradeScope.ALL
    nets = tuple(ipaddress.ip_network(n) for n in ("10.244.0.0/16", "10.244.1.0/24", "10.245.0.0/16", "fd00:244::/56"))
    r = plan(s, Options(node_name=NODE, cluster_cidrs=nets, nodeport_addresses=nets[:1]))
    assert list(elements(table(r), "cluster-cidrs")) == [("10.244.0.0/15",)]  # merged: nft refuses overlaps
    assert list(elements(table(r, Family.IP6), "cluster-cidrs")) == [("fd00:244::/56",)]
    assert table(r).nodeport_cidrs and not table(r, Family.IP6).nodeport_cidrs
    assert table(r, Family.IP6).masquerade is MasqueradeScope.OUTSIDE_CLUSTER
    # an IPv4-only cluster CIDR: the ip6 table has nothing to compare sources with
    assert table(plan(s, OPTIONS), Family.IP6).masquerade is MasqueradeScope.NONE


def test_cluster_ips_and_service_cidrs_per_family() -> None:
    """Every proxied ClusterIP once (a port without endpoints too: undefined ports are rejected
    whatever the defined ones do), in address order; the service CIDRs of each family, merged."""
    services = [
        svc("b", cluster_ips=("10.96.0.20", "fd00:10:96::20"), backends=(REMOTE,)),
        svc("a", cluster_ips=("10.96.0.10",)),
        svc("h", headless=True, cluster_ips=(), backends=(REMOTE,)),
    ]
    nets = tuple(ipaddress.ip_network(n) for n in ("10.96.0.0/12", "10.96.0.0/16", "fd00:10:96::/112"))
    r = plan(services, Options(node_name=NODE, service_cidrs=nets))
    assert list(elements(table(r), "cluster-ips")) == [("10.96.0.10",), ("10.96.0.20",)]
    assert list(elements(table(r, Family.IP6), "cluster-ips")) == [("fd00:10:96::20",)]
    assert list(elements(table(r), "service-cidrs")) == [("10.96.0.0/12",)]
    assert list(elements(table(r, Family.IP6), "service-cidrs")) == [("fd00:10:96::/112",)]


def test_table_name_from_options() -> None:
    r = plan([], Options(node_name=NODE, table="k8s"))
    assert [(t.family, t.name) for t in r.tables] == [(Family.IP, "k8s"), (Family.IP6, "k8s")]


# ---- hostile input never reaches the ruleset ------------------------------------------------

HOSTILE = '"; flush ruleset; add table ip x #'


@pytest.mark.parametrize(
    "field, yaml_text",
    [
        ("service name", f"metadata: {{name: 'web{HOSTILE}'}}\nspec: {{ports: [{{port: 80}}]}}"),
        ("namespace", f"metadata: {{name: web, namespace: 'ns{HOSTILE}'}}\nspec: {{ports: [{{port: 80}}]}}"),
        ("label", f"metadata: {{name: web, labels: {{app: 'x{HOSTILE}'}}}}\nspec: {{ports: [{{port: 80}}]}}"),
        ("selector", f"metadata: {{name: web}}\nspec: {{selector: {{app: 'x{HOSTILE}'}}, ports: [{{port: 80}}]}}"),
        ("port name", f"metadata: {{name: web}}\nspec: {{ports: [{{name: 'p{HOSTILE}', port: 80}}]}}"),
        ("targetPort", f"metadata: {{name: web}}\nspec: {{ports: [{{port: 80, targetPort: 'p{HOSTILE}'}}]}}"),
        ("externalIP", f"metadata: {{name: web}}\nspec: {{externalIPs: ['1.2.3.4{HOSTILE}'], ports: [{{port: 80}}]}}"),
        ("clusterIP", f"metadata: {{name: web}}\nspec: {{clusterIP: '10.96.0.1{HOSTILE}', ports: [{{port: 80}}]}}"),
        ("source range", f"metadata: {{name: web}}\nspec: {{type: LoadBalancer, loadBalancerSourceRanges: ['10.0.0.0/8{HOSTILE}'], ports: [{{port: 80}}]}}"),
        ("LB ingress", f"metadata: {{name: web}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\nstatus: {{loadBalancer: {{ingress: [{{ip: '1.2.3.4{HOSTILE}'}}]}}}}"),
    ],
)
def test_hostile_service_fields_are_rejected(field: str, yaml_text: str, write, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = write(f"apiVersion: v1\nkind: Service\n{yaml_text}\n")
    result = run_cli("compile", path, "--node-name", NODE)
    assert result.code == 2, (field, result)
    assert result.out == "" and "internal error" not in result.err, (field, result)


def test_hostile_endpoint_address_is_rejected(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = write(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n"
        f"subsets: [{{addresses: [{{ip: '10.0.0.1{HOSTILE}'}}], ports: [{{port: 80}}]}}]\n"
    )
    result = run_cli("compile", path, "--node-name", NODE)
    assert result.code == 2 and result.out == "" and "internal error" not in result.err, result


def test_hostile_node_option_is_rejected(write, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = write("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
    for flag, value in [("--node-name", f"n{HOSTILE}"), ("--table", f"t{HOSTILE}"), ("--cluster-cidr", f"10.0.0.0/8{HOSTILE}")]:
        result = run_cli("compile", path, "--node-name", NODE, flag, value)
        assert result.code == 2 and result.out == "" and "internal error" not in result.err, (flag, result)


def test_the_frame_chains_are_the_hook_chains_the_template_writes():
    # The frame is declared once (svcctl/nftables/frame.py): the template writes those chains
    # and no other besides the per-port ones.
    from pathlib import Path

    from svcctl.nftables.frame import FRAME_CHAINS
    from svcctl.options import build_options
    from svcctl.pipeline import compile_rules
    from svcctl.sources import read_manifests

    example = str(Path(__file__).resolve().parents[1] / "examples" / "web.yaml")
    compiled = compile_rules(read_manifests([example]), build_options({"node-name": "node-1"}))[2]
    declared = {line.split()[1] for line in compiled.text.splitlines() if line.startswith("\tchain ")}
    per_port = {c.name for t in compiled.rules.tables for c in (*t.endpoint_chains, *t.external_chains)}
    assert declared - per_port == {c.name for c in FRAME_CHAINS}
