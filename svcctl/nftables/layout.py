"""The plan (svcctl.plan) as nftables objects: names, elements, chains. The layout and the
measurements behind it are in docs/nft-layout.md; in short:

- Services are dispatched by named verdict maps keyed ``daddr . l4proto . dport`` (ClusterIPs,
  externalIPs, LoadBalancer IPs) and ``l4proto . dport`` (NodePorts): one lookup per packet.
- Each endpoint group is one chain holding the plan's probability cascade (per-endpoint chains
  and anonymous maps make the kernel's load time grow quadratically, docs/kernel-notes.md).
- Session affinity: one dynamic set per endpoint, holding the clients pinned to it.
- Masquerading is decided by setting a mark bit; nat-postrouting masquerades marked packets.
- Rejects and drops for ports without usable endpoints happen in filter chains (nat cannot reject).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple

from ..formats import address_order
from ..plan.model import (
    Action, Destination, EndpointGroup, ExternalRoute, FamilyPlan, FamilySettings, NodePort, Plan, PortPlan, Target,
)
from . import frame
from .frame import AFFINITY, EXT, LOCAL, SVC, SetSpec
from .names import comment, object_name
from .objects import (
    DROP,
    REJECT,
    Element,
    EndpointChain,
    ExternalChain,
    Family,
    NamedSet,
    Pick,
    Ruleset,
    Table,
    Verdict,
)

_ACTIONS = {Action.REJECT: REJECT, Action.DROP: DROP}


def layout(plan: Plan, table: str) -> Ruleset:
    """One table named ``table`` per IP family."""
    return Ruleset(tuple(_table(fp, table) for fp in plan.families), plan.warnings)


def _key(d: Destination | NodePort) -> tuple[str, ...]:
    if isinstance(d, Destination):
        return (d.address, d.protocol.value.lower(), str(d.port))
    return (d.protocol.value.lower(), str(d.port))


class _Namer:
    """Names of one table's per-port objects (chains name groups by object identity: the plan
    refers to one group object from the dispatch entries and the route alike)."""

    def __init__(self, family: Family):
        self.family = family
        self.names: dict[int, str] = {}

    def affinity(self, ident: str, address: str, port: int) -> str:
        return object_name(AFFINITY, f"{ident}/{address}-{port}")

    def group(self, g: EndpointGroup) -> str:
        name = self.names.get(id(g))
        if name is None:
            # The rules follow from the protocol, the affinity timeout and the targets in order
            # (the moduli from their count, the affinity sets from ident and target).
            targets = " ".join(self.family.endpoint(*p.endpoint) for p in g.picks)
            proto = g.port.protocol.value.lower()
            name = self.names[id(g)] = object_name(LOCAL if g.local else SVC, g.port.ident, f"{proto} {g.affinity_timeout} {targets}")
        return name

    def route(self, r: ExternalRoute) -> str:
        name = self.names.get(id(r))
        if name is None:
            content = (r.mark_all, self.optional(r.pods_to), self.optional(r.node_to), self.optional(r.then_to))
            name = self.names[id(r)] = object_name(EXT, r.port.ident, content)
        return name

    def optional(self, g: EndpointGroup | None) -> str:
        return self.group(g) if g is not None else ""

    def target(self, t: Target) -> Verdict:
        return Verdict.goto(self.route(t) if isinstance(t, ExternalRoute) else self.group(t))


class PortObjects(NamedTuple):
    """What one Service port adds to its family's table: its chains, its affinity sets and its
    elements of the frame's sets (hairpin and UDP endpoints before they are merged with the
    other ports')."""

    endpoint_chains: tuple[EndpointChain, ...]
    external_chains: tuple[ExternalChain, ...]
    affinity_sets: tuple[NamedSet, ...]
    elements: dict[SetSpec, tuple[Element, ...]]


def port_objects(port: PortPlan, family: Family) -> PortObjects:
    namer = _Namer(family)
    ident, label = port.port.ident, port.port.label
    endpoint_chains: list[EndpointChain] = []
    affinity_sets: list[NamedSet] = []
    affinity: dict[tuple[str, int], str] = {}
    for g in port.groups:
        timeout = g.affinity_timeout
        picks = []
        for p in g.picks:
            aff = None
            if timeout:
                aff = affinity.get(p.endpoint)
                if aff is None:  # one set per endpoint the port's chains refer to
                    aff = affinity[p.endpoint] = namer.affinity(ident, *p.endpoint)
                    affinity_sets.append(
                        NamedSet(aff, (family.addr_type,), comment(label, f"affinity to {family.endpoint(*p.endpoint)}"), dynamic=True)
                    )
            picks.append(Pick(family.endpoint(*p.endpoint), p.modulus, aff))
        what = "(local endpoints)" if g.local else ""
        endpoint_chains.append(EndpointChain(namer.group(g), comment(label, what), g.port.protocol.value.lower(), tuple(picks), timeout))
    external_chains = []
    r = port.route
    if r is not None:
        what = "(external, local endpoints)" if r.local_policy else "(external)"
        external_chains.append(
            ExternalChain(namer.route(r), comment(label, what), r.mark_all, namer.optional(r.pods_to), namer.optional(r.node_to), namer.optional(r.then_to))
        )
    elements = {
        frame.SERVICE_IPS: tuple(Element(_key(d), namer.target(t)) for d, t in port.service_ips),
        frame.SERVICE_NODEPORTS: tuple(Element(_key(n), namer.target(t)) for n, t in port.node_ports),
        frame.NO_ENDPOINT_SERVICES: tuple(Element(_key(d), _ACTIONS[a]) for d, a in port.no_endpoint_ips),
        frame.NO_ENDPOINT_NODEPORTS: tuple(Element(_key(n), _ACTIONS[a]) for n, a in port.no_endpoint_node_ports),
        frame.FIREWALL_IPS: tuple(Element(_key(d)) for d, _ in port.firewall),
        frame.FIREWALL_ALLOW: tuple(Element((*_key(d), r)) for d, ranges in port.firewall for r in ranges),
        frame.HAIRPIN: tuple(Element((ip, ip)) for ip in port.hairpin),
        frame.UDP_ENDPOINTS: tuple(Element((e.address, str(e.port))) for e in port.udp_endpoints),
    }
    return PortObjects(tuple(endpoint_chains), tuple(external_chains), tuple(affinity_sets), elements)


# Elements several ports may share: written once, in address order.
_MERGED_ORDER: dict[SetSpec, Callable[[Element], Any]] = {
    frame.HAIRPIN: lambda el: address_order(el.key[0]),
    frame.UDP_ENDPOINTS: lambda el: (address_order(el.key[0]), int(el.key[1])),
}


def merged(spec: SetSpec, elements: Iterable[Element]) -> list[Element]:
    """A frame set's elements from the ports' (in port order): shared ones once, in order."""
    order = _MERGED_ORDER.get(spec)
    return list(elements) if order is None else sorted(set(elements), key=order)


# The frame sets whose elements come from the node options alone (assemble writes them).
NODE_WIDE = (frame.SERVICE_CIDRS, frame.CLUSTER_CIDRS, frame.NODEPORT_CIDRS)


def assemble(version: int, settings: FamilySettings, ports: Iterable[PortObjects], cluster_ips: Iterable[str], name: str) -> Table:
    """A family's table from its ports' objects (in port order) and the cluster IPs of its
    Services (in address order)."""
    family = Family.of(version)
    ports = list(ports)
    not_per_port = {
        frame.CLUSTER_IPS: tuple(cluster_ips),
        frame.SERVICE_CIDRS: settings.service_cidrs,
        frame.CLUSTER_CIDRS: settings.cluster_cidrs,
        frame.NODEPORT_CIDRS: settings.nodeport_cidrs,
    }
    static = tuple(
        NamedSet(
            s.name, family.key_type(s), s.comment, is_map=s.is_map, interval=s.interval,
            elements=tuple(Element((x,)) for x in not_per_port[s]) if s in not_per_port else tuple(merged(s, (el for p in ports for el in p.elements[s]))),
        )
        for s in frame.STATIC_SETS
    )
    affinity_sets = sorted((a for p in ports for a in p.affinity_sets), key=lambda s: s.name)
    return Table(
        family=family,
        name=name,
        masquerade=settings.masquerade,
        nodeport_cidrs=bool(settings.nodeport_cidrs),
        sets=(*affinity_sets, *static),
        endpoint_chains=tuple(c for p in ports for c in p.endpoint_chains),
        external_chains=tuple(e for p in ports for e in p.external_chains),
    )


def _table(fp: FamilyPlan, name: str) -> Table:
    family = Family.of(fp.version)
    settings = FamilySettings(fp.masquerade, fp.cluster_cidrs, fp.nodeport_cidrs, fp.service_cidrs)
    return assemble(fp.version, settings, (port_objects(p, family) for p in fp.ports), fp.cluster_ips, name)
