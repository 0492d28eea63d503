"""The plan (svcctl.plan) as iptables chains and rules. kube-proxy's iptables layout is the
reference; docs/iptables-layout.md shows it rule by rule and says where svcctl's differs. In
short, per family:

- nat: SVCCTL-SERVICES dispatches ClusterIPs, externalIPs and LoadBalancer IPs (one rule per
  address and port) and ends with the jump to SVCCTL-NODEPORTS for local destinations; an
  SVC (all endpoints) or SVL (this node's) chain per Service port holds the masquerade rule for
  its ClusterIP and the probability cascade; an EXT chain per port routes external traffic.
  An endpoint gets an SEP chain only when it needs one: for the hairpin masquerade (an endpoint
  on this node reaching itself) or for session affinity; the others are DNATed by the cascade
  rule itself (kube-proxy makes one chain per endpoint; at 10,000 Services x 10 endpoints that
  is 100,000 chains, which iptables-nft 1.8.9 cannot read back: docs/iptables-layout.md).
- filter: SVCCTL-FIREWALL checks loadBalancerSourceRanges against the destination a
  connection had before DNAT (conntrack), whether it was DNATed or not; SVCCTL-SERVICES and
  SVCCTL-NODEPORTS reject or drop new connections to Service ports without usable endpoints.
- Masquerading sets a mark bit; SVCCTL-POSTROUTING masquerades marked packets.
"""

from __future__ import annotations

import functools
import ipaddress
from itertools import repeat
from typing import Any, Callable, NamedTuple

from ..formats import address_order
from ..model import Protocol
from ..plan.model import (
    LOOPBACK,
    Action,
    Destination,
    Endpoint,
    EndpointGroup,
    ExternalRoute,
    FamilyPlan,
    Frontend,
    MasqueradeScope,
    Plan,
    PortPlan,
    Target as PlanTarget,
)
from . import frame
from .frame import EXT, FW, HOOKS, SEP, SVC, SVL, TableName
from .names import chain_name, comment, comments
from .objects import (
    DROP,
    RETURN,
    AddrType,
    Chain,
    Family,
    FamilyRules,
    Jump,
    MarkMatch,
    Match,
    NewConnection,
    OriginalDestination,
    Recent,
    Rule,
    Ruleset,
    Statistic,
    Table,
    Target,
    TargetKind,
)

_MARK = f"0x{frame.MASQUERADE_MARK:x}"
MARK_SET = Target(TargetKind.MARK, f"{_MARK}/{_MARK}")
MARK_CLEAR = Target(TargetKind.MARK, f"{_MARK}/0x0")  # --set-xmark value/0: XOR, clears the set bit
NODEPORTS_COMMENT = "svcctl service nodeports; NOTE: this must be the last rule in this chain"
_FRONTENDS = {Frontend.CLUSTER_IP: "cluster IP", Frontend.EXTERNAL_IP: "external IP", Frontend.LOAD_BALANCER_IP: "loadbalancer IP"}


def layout(plan: Plan) -> Ruleset:
    return Ruleset(tuple(_family(fp) for fp in plan.families), plan.warnings)


def probability(modulus: int) -> str:
    """The cascade's 1/modulus as kube-proxy writes it; iptables keeps it as a 31-bit fraction
    (iptables-save prints that: svcctl.iptables.state.saved_form)."""
    return f"{1.0 / modulus:0.10f}"


# tuple.__new__ builds a Rule or Target in C; a NamedTuple's own __new__ is Python, called with
# keywords: the cascades and SEP chains hold 120,000 rules at 10,000 Services x 10 endpoints.
# The three shapes of rule made in such numbers are built by the functions below, positionally.
_rule: Callable[[tuple[Any, ...]], Rule] = functools.partial(tuple.__new__, Rule)  # type: ignore[arg-type]
_target: Callable[[tuple[TargetKind, str]], Target] = functools.partial(tuple.__new__, Target)  # type: ignore[arg-type]
_JUMP, _DNAT = TargetKind.JUMP, TargetKind.DNAT


def _jump(chain: str, what: str, match: Match | None = None, source: str = "") -> Rule:
    """``[-s source] -m comment [match] -j chain``."""
    return _rule((_target((_JUMP, chain)), source, False, "", "", what, 0, match))


def _dnat(to: str, protocol: str, what: str, match: Match | None) -> Rule:
    """``-p protocol -m comment [match] -j DNAT --to-destination to``."""
    return _rule((_target((_DNAT, to)), "", False, "", protocol, what, 0, match))


def _towards(target: Target, destination: str, protocol: str, what: str, dport: int = 0) -> Rule:
    """``[-d destination] [-p protocol] -m comment [--dport dport] -j target``: the dispatch
    and reject rules."""
    return _rule((target, "", False, destination, protocol, what, dport, None))
_PROTOCOLS = {p: p.value.lower() for p in Protocol}  # enum .value is a Python descriptor


@functools.lru_cache(maxsize=None)
def _chance(modulus: int | None) -> Statistic | None:
    """A cascade step's match, made once per modulus (a cluster has a few dozen)."""
    return Statistic(probability(modulus)) if modulus else None


class _Group(NamedTuple):
    """An endpoint group taken apart once: its endpoints, their moduli and DNAT targets, and
    the SEP chain of each endpoint that has one ("" for none)."""

    group: EndpointGroup
    endpoints: tuple[Endpoint, ...]
    moduli: tuple[int | None, ...]
    targets: tuple[str, ...]
    seps: tuple[str, ...]


class _Port:
    """The chains of one Service port in one family."""

    def __init__(self, family: Family, masquerade: Target | None, cluster_cidrs: tuple[str, ...], port: PortPlan):
        self.family, self.port = family, port
        ref = port.port
        self.label, self.proto = ref.label, ref.protocol.value.lower()
        self.masquerade, self.cluster_cidrs = masquerade, cluster_cidrs
        self.chains: dict[str, Chain] = {}
        # Groups are told apart by identity: the plan refers to one group object from the
        # dispatch entries and from the route alike.
        ident = ref.ident
        self.group_names = {id(g): chain_name(SVL if g.local else SVC, ident) for g in port.groups}
        self.route_name = chain_name(EXT, ident) if port.route else ""
        groups = self._groups(ident)
        internal = {id(t): d for d, t in port.service_ips if isinstance(t, EndpointGroup)}
        for g in groups:
            self._sep_chains(g)
            self._add(self.group_names[id(g.group)], (*self._masquerade(internal.get(id(g.group))), *self._cascade(g)))
        if port.route:
            self._add(self.route_name, self._external(port.route))

    def _groups(self, ident: str) -> list[_Group]:
        """The port's groups taken apart; an endpoint gets an SEP chain for session affinity or
        for the hairpin mark, one per endpoint whichever groups it is in. Each endpoint's DNAT
        target is formatted once, in C (an Endpoint is a tuple), for its rules and its SEP name."""
        hairpin = frozenset(self.port.hairpin)
        taken = []
        sep: dict[Endpoint, str] = {}
        for g in self.port.groups:
            endpoints, moduli = zip(*g.picks)  # a group has an endpoint at least
            targets = tuple(map(self.family.target_format.__mod__, endpoints))
            own = zip(endpoints, targets) if g.affinity_timeout else [(e, t) for e, t in zip(endpoints, targets) if e.address in hairpin]
            for e, t in own:
                if e not in sep:
                    sep[e] = chain_name(SEP, f"{ident}/{t}")
            taken.append((g, endpoints, moduli, targets))
        return [_Group(g, endpoints, moduli, targets, tuple(map(sep.get, endpoints, repeat("")))) for g, endpoints, moduli, targets in taken]

    def _add(self, name: str, rules: tuple[Rule, ...]) -> None:
        self.chains[name] = Chain(name, rules, self.port.port)

    def target(self, t: PlanTarget) -> str:
        return self.route_name if isinstance(t, ExternalRoute) else self.group_names[id(t)]

    def optional(self, g: EndpointGroup | None) -> str:
        return self.group_names[id(g)] if g is not None else ""

    def _masquerade(self, cluster_ip: Destination | None) -> tuple[Rule, ...]:
        """First rule of a ClusterIP's chain: mark traffic to the ClusterIP (not external traffic
        that reaches the chain through EXT) for masquerading, as the plan's scope says."""
        if cluster_ip is None or self.masquerade is None:
            return ()
        return (Rule(self.masquerade, destination=self.family.network(cluster_ip.address), protocol=self.proto,
                     comment=comment(self.label, "cluster IP"), dport=cluster_ip.port),)

    def _cascade(self, g: _Group) -> list[Rule]:
        """Affinity checks first (a known client goes back to its endpoint), then one rule per
        endpoint that matches with probability 1/modulus, the last always: to the endpoint's SEP
        chain if it has one, else DNAT."""
        whats = comments(self.label, map("-> ".__add__, g.targets))
        timeout, proto = g.group.affinity_timeout, self.proto
        rules = []
        if timeout:
            mask = self.family.recent_mask
            rules += [_jump(s, what, Recent(s, mask, timeout)) for s, what in zip(g.seps, whats)]
        rules += [
            _jump(s, what, chance) if s else _dnat(t, proto, what, chance)
            for t, s, what, chance in zip(g.targets, g.seps, whats, map(_chance, g.moduli))
        ]
        return rules

    def _sep_chains(self, g: _Group) -> None:
        """An endpoint's own chain: the hairpin mark (its own traffic coming back to it must be
        masqueraded, or it drops a reply from its own address), the affinity record, the DNAT."""
        what = comment(self.label)
        for e, t, name in zip(g.endpoints, g.targets, g.seps):
            if not name or name in self.chains:
                continue
            rules = []
            if e.address in self.port.hairpin:
                rules.append(_jump(frame.MARK_MASQ, what, source=self.family.network(e.address)))
            record = Recent(name, self.family.recent_mask) if g.group.affinity_timeout else None
            rules.append(_dnat(t, self.proto, what, record))
            self._add(name, tuple(rules))

    def _external(self, r: ExternalRoute) -> tuple[Rule, ...]:
        """externalTrafficPolicy (svcctl.plan.external): kube-proxy's KUBE-EXT chain."""
        label, rules = self.label, []
        mark = Target.jump(frame.MARK_MASQ)
        if r.mark_all:
            rules.append(Rule(mark, comment=comment(label, "masquerade external traffic")))
        if r.pods_to:
            rules += [Rule(Target.jump(self.optional(r.pods_to)), source=self.family.network(c), comment=comment(label, "pod traffic to external addresses"))
                      for c in self.cluster_cidrs]
        if r.node_to:
            rules.append(Rule(mark, comment=comment(label, "masquerade traffic from this node"), match=AddrType(source=True)))
            rules.append(Rule(Target.jump(self.optional(r.node_to)), comment=comment(label, "traffic from this node"), match=AddrType(source=True)))
        if r.then_to:
            rules.append(Rule(Target.jump(self.optional(r.then_to)), comment=comment(label, "external traffic")))
        return tuple(rules)


def _reject(family: Family, protocol: str, action: Action) -> Target:
    """Reject as svcctl's nftables back end does: a TCP reset (refused at once; an ICMPv6 error
    arrives while connect() holds the socket lock and is lost), ICMP port unreachable otherwise."""
    if action is Action.DROP:
        return DROP
    return Target(TargetKind.REJECT, "tcp-reset" if protocol == "tcp" else family.port_unreachable)


def _nodeport_tail(family: Family, nodeport_cidrs: tuple[str, ...]) -> tuple[Rule, ...]:
    """The end of SVCCTL-SERVICES (nat and filter): NodePorts answer on the node's own addresses
    but loopback, inside --nodeport-addresses if given."""
    to_nodeports = Target.jump(frame.NODEPORTS)
    return (
        Rule(RETURN, destination=family.network(LOOPBACK[family.version])),
        *(Rule(to_nodeports, destination=family.network(c) if c else "", comment=NODEPORTS_COMMENT, match=AddrType(source=False))
          for c in nodeport_cidrs or ("",)),
    )


def _cluster_ip_checks(family: Family, fp: FamilyPlan) -> tuple[Chain, Chain]:
    """New connections the dispatch left alone (not DNATed): to a ClusterIP, on a port no Service
    port holds, rejected at once; to another address in the service CIDRs, dropped (kube-proxy's
    cluster-ips check). Only traffic into the service CIDRs goes through the list of ClusterIPs:
    every new connection the node forwards or sends passes SVCCTL-CLUSTER-IPS."""
    what = "ClusterIP: no such Service port"
    tcp, other = _reject(family, "tcp", Action.REJECT), _reject(family, "", Action.REJECT)

    def reject(ips: list[str]) -> list[Rule]:
        """A TCP reset for TCP, ICMP port unreachable for the rest: two rules per ClusterIP."""
        return [
            r for address in map(family.network, ips)
            for r in (_towards(tcp, address, "tcp", what), _towards(other, address, "", what))
        ]

    inside, outside = _split(fp.cluster_ips, fp.service_cidrs)
    top = (
        *(Rule(Target.jump(frame.SERVICE_CIDRS), destination=family.network(c)) for c in fp.service_cidrs),
        *reject(outside),
    )
    return Chain(frame.CLUSTER_IPS, top), Chain(frame.SERVICE_CIDRS, (
        *reject(inside),
        Rule(DROP, comment="service CIDR: no such Service"),
    ))


def _split(addresses: tuple[str, ...], cidrs: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The addresses in one of the networks, and the others, each once in their order. Compared
    as bytes (inet_pton): the ipaddress module parses an address in Python, 3 us each for
    10,000 ClusterIPs."""
    spans = [(n.network_address.packed, n.broadcast_address.packed) for n in map(ipaddress.ip_network, cidrs)]
    inside: list[str] = []
    outside: list[str] = []
    for address in dict.fromkeys(addresses):
        packed = address_order(address)
        (inside if any(len(packed) == len(low) and low <= packed <= high for low, high in spans) else outside).append(address)
    return inside, outside


def _outside(family: Family, fp: FamilyPlan) -> tuple[Rule, ...]:
    """SVCCTL-MASQ-OUTSIDE: marks what does not come from a --cluster-cidr (one rule cannot say
    "none of these networks": one RETURN per network, then the mark)."""
    return (*(Rule(RETURN, source=family.network(c)) for c in fp.cluster_cidrs), Rule(MARK_SET))


def _jumps(table: TableName) -> tuple[Jump, ...]:
    return tuple(
        Jump(h.builtin, Rule(Target.jump(h.chain), comment=h.comment, match=NewConnection() if h.new_only else None))
        for h in HOOKS[table]
    )


def _family(fp: FamilyPlan) -> FamilyRules:
    family = Family.of(fp.version)
    masquerade = {
        MasqueradeScope.NONE: None,
        MasqueradeScope.OUTSIDE_CLUSTER: Target.jump(frame.MASQ_OUTSIDE),
        MasqueradeScope.ALL: Target.jump(frame.MARK_MASQ),
    }[fp.masquerade]
    ports = [_Port(family, masquerade, fp.cluster_cidrs, p) for p in fp.ports]
    tail = _nodeport_tail(family, fp.nodeport_cidrs)

    def rule(d: Destination, label: str, what: str, target: Target) -> Rule:
        return _towards(target, family.network(d.address), _PROTOCOLS[d.protocol], comment(label, what), d.port)

    nat_services, nat_nodeports, filter_services, filter_nodeports, firewall = [], [], [], [], []
    firewall_chains = []
    for p, plan in zip(ports, fp.ports):
        kinds = dict(plan.frontends)
        for d, t in plan.service_ips:
            nat_services.append(rule(d, p.label, _FRONTENDS[kinds[d]], _target((_JUMP, p.target(t)))))
        for n, t in plan.node_ports:
            nat_nodeports.append(_towards(_target((_JUMP, p.target(t))), "", p.proto, comment(p.label), n.port))
        for d, a in plan.no_endpoint_ips:
            what = "has no local endpoints" if a is Action.DROP else "has no endpoints"
            filter_services.append(rule(d, p.label, what, _reject(family, p.proto, a)))
        for n, a in plan.no_endpoint_node_ports:
            filter_nodeports.append(Rule(_reject(family, p.proto, a), protocol=p.proto, comment=comment(p.label), dport=n.port))
        if plan.firewall:
            fw = chain_name(FW, plan.port.ident)
            # The plan gives every LoadBalancer IP of a port the same ranges.
            ranges = dict.fromkeys(r for _, rs in plan.firewall for r in rs)
            firewall_chains.append(Chain(fw, (
                *(Rule(RETURN, source=family.network(r), comment=comment(p.label, "loadBalancerSourceRanges")) for r in ranges),
                Rule(DROP, comment=comment(p.label, "source not in loadBalancerSourceRanges")),
            ), plan.port))
            firewall += [Rule(Target.jump(fw), protocol=d.protocol.value.lower(), comment=comment(p.label, "loadbalancer IP"),
                              match=OriginalDestination(d.address, d.port)) for d, _ in plan.firewall]

    nat = Table(TableName.NAT, (
        Chain(frame.SERVICES, (*nat_services, *tail)),
        Chain(frame.NODEPORTS, tuple(nat_nodeports)),
        Chain(frame.MARK_MASQ, (Rule(MARK_SET),)),
        Chain(frame.MASQ_OUTSIDE, _outside(family, fp) if fp.masquerade is MasqueradeScope.OUTSIDE_CLUSTER else ()),
        Chain(frame.POSTROUTING, (
            Rule(RETURN, match=MarkMatch(f"{_MARK}/{_MARK}")),
            Rule(MARK_CLEAR),
            Rule(Target(TargetKind.MASQUERADE), comment="svcctl service traffic requiring SNAT"),
        )),
        *(c for p in ports for c in p.chains.values()),
    ), _jumps(TableName.NAT))
    filter_ = Table(TableName.FILTER, (
        Chain(frame.FIREWALL, tuple(firewall)),
        Chain(frame.SERVICES, (*filter_services, *tail)),
        Chain(frame.NODEPORTS, tuple(filter_nodeports)),
        *_cluster_ip_checks(family, fp),
        *firewall_chains,
    ), _jumps(TableName.FILTER))
    udp = frozenset((e.address, e.port) for plan in fp.ports for e in plan.udp_endpoints)
    return FamilyRules(family, (filter_, nat), udp)
