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

import functools
from collections import defaultdict
from itertools import repeat
from typing import Any, Callable, Iterable, NamedTuple

from ..formats import address_order
from ..plan.model import (
    Action, Destination, Endpoint, EndpointGroup, ExternalRoute, FamilyPlan, FamilySettings, NodePort, Plan, PortPlan, PortRef, Target,
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


# tuple.__new__ builds each Pick in C (a NamedTuple's own __new__ is Python): one per endpoint.
_pick: Callable[[tuple[str, int | None, str | None]], Pick] = functools.partial(tuple.__new__, Pick)  # type: ignore[arg-type]


class _Namer:
    """Names of one Service port's objects (chains name groups by object identity: the plan
    refers to one group object from the dispatch entries and the route alike). The groups and
    the route of a PortPlan are that port's: its ident and protocol are worked out once."""

    def __init__(self, port: PortRef, family: Family):
        self.ident = port.ident
        self.protocol = port.protocol.value.lower()
        self.target_format = family.target_format
        self.names: dict[int, str] = {}

    def targets(self, endpoints: Iterable[Endpoint]) -> tuple[str, ...]:
        """The endpoints as DNAT targets (an Endpoint is an (address, port) tuple)."""
        return tuple(map(self.target_format.__mod__, endpoints))

    def affinity(self, endpoint: Endpoint) -> str:
        return object_name(AFFINITY, f"{self.ident}/{endpoint.address}-{endpoint.port}")

    def group(self, g: EndpointGroup, targets: tuple[str, ...] | None = None) -> str:
        """``targets``: the group's, when the caller has them already."""
        name = self.names.get(id(g))
        if name is None:
            # The rules follow from the protocol, the affinity timeout and the targets in order
            # (the moduli from their count, the affinity sets from ident and target).
            content = f"{self.protocol} {g.affinity_timeout} {' '.join(targets or self.targets(p.endpoint for p in g.picks))}"
            name = self.names[id(g)] = object_name(LOCAL if g.local else SVC, self.ident, content)
        return name

    def route(self, r: ExternalRoute) -> str:
        name = self.names.get(id(r))
        if name is None:
            content = (r.mark_all, self.optional(r.pods_to), self.optional(r.node_to), self.optional(r.then_to))
            name = self.names[id(r)] = object_name(EXT, self.ident, content)
        return name

    def optional(self, g: EndpointGroup | None) -> str:
        return self.group(g) if g is not None else ""

    def target(self, t: Target) -> Verdict:
        return Verdict.goto(self.route(t) if isinstance(t, ExternalRoute) else self.group(t))


class PortObjects(NamedTuple):
    """What one Service port adds to its family's table: its chains, its affinity sets and its
    elements of the frame's sets (hairpin and UDP endpoints before they are merged with the
    other ports'): only the sets it has elements in."""

    endpoint_chains: tuple[EndpointChain, ...]
    external_chains: tuple[ExternalChain, ...]
    affinity_sets: tuple[NamedSet, ...]
    elements: dict[SetSpec, tuple[Element, ...]]


def port_objects(port: PortPlan, family: Family) -> PortObjects:
    namer = _Namer(port.port, family)
    label = port.port.label
    affinity_sets: dict[Endpoint, NamedSet] = {}  # one set per endpoint the port's chains refer to
    endpoint_chains = tuple(_endpoint_chain(g, namer, label, family, affinity_sets) for g in port.groups)
    r = port.route
    external_chains = () if r is None else (
        ExternalChain(
            namer.route(r), comment(label, "(external, local endpoints)" if r.local_policy else "(external)"),
            r.mark_all, namer.optional(r.pods_to), namer.optional(r.node_to), namer.optional(r.then_to),
        ),
    )
    return PortObjects(endpoint_chains, external_chains, tuple(affinity_sets.values()), _elements(port, namer))


def _endpoint_chain(g: EndpointGroup, namer: _Namer, label: str, family: Family, affinity_sets: dict[Endpoint, NamedSet]) -> EndpointChain:
    """The group's chain; the affinity sets its rules refer to go into ``affinity_sets``."""
    endpoints, moduli = zip(*g.picks)  # a group has an endpoint at least
    targets = namer.targets(endpoints)
    affinity: Iterable[str | None] = repeat(None)
    if g.affinity_timeout:
        affinity = [_affinity_set(e, target, namer, label, family, affinity_sets) for e, target in zip(endpoints, targets)]
    picks = tuple(map(_pick, zip(targets, moduli, affinity)))
    what = "(local endpoints)" if g.local else ""
    return EndpointChain(namer.group(g, targets), comment(label, what), namer.protocol, picks, g.affinity_timeout)


def _affinity_set(endpoint: Endpoint, target: str, namer: _Namer, label: str, family: Family, sets: dict[Endpoint, NamedSet]) -> str:
    s = sets.get(endpoint)
    if s is None:
        s = sets[endpoint] = NamedSet(namer.affinity(endpoint), (family.addr_type,), comment(label, f"affinity to {target}"), dynamic=True)
    return s.name


def _elements(port: PortPlan, namer: _Namer) -> dict[SetSpec, tuple[Element, ...]]:
    """The port's elements of the frame's sets, for the sets it has some in: most ports have
    one or two of the eight, and a SetSpec is a dataclass: hashing one as a dict key is a
    Python call (keying all eight, empty or not, took a tenth of port_objects' time)."""
    made: tuple[tuple[SetSpec, list[Element]], ...] = (
        (frame.SERVICE_IPS, [Element(_key(d), namer.target(t)) for d, t in port.service_ips]),
        (frame.SERVICE_NODEPORTS, [Element(_key(n), namer.target(t)) for n, t in port.node_ports]),
        (frame.NO_ENDPOINT_SERVICES, [Element(_key(d), _ACTIONS[a]) for d, a in port.no_endpoint_ips]),
        (frame.NO_ENDPOINT_NODEPORTS, [Element(_key(n), _ACTIONS[a]) for n, a in port.no_endpoint_node_ports]),
        (frame.FIREWALL_IPS, [Element(_key(d)) for d, _ in port.firewall]),
        (frame.FIREWALL_ALLOW, [Element((*_key(d), r)) for d, ranges in port.firewall for r in ranges]),
        (frame.HAIRPIN, [Element((ip, ip)) for ip in port.hairpin]),
        (frame.UDP_ENDPOINTS, [Element((e.address, str(e.port))) for e in port.udp_endpoints]),
    )
    return {spec: tuple(elements) for spec, elements in made if elements}


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
    per_port = _by_set(ports)
    static = tuple(
        NamedSet(
            s.name, family.key_type(s), s.comment, is_map=s.is_map, interval=s.interval,
            elements=tuple(Element((x,)) for x in not_per_port[s]) if s in not_per_port else tuple(merged(s, per_port[s])),
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


def _by_set(ports: list[PortObjects]) -> defaultdict[SetSpec, list[Element]]:
    """The ports' elements by frame set, in port order: one pass over the ports, one lookup per
    set a port has elements in (a SetSpec hashes in Python)."""
    out: defaultdict[SetSpec, list[Element]] = defaultdict(list)
    for p in ports:
        for spec, elements in p.elements.items():
            out[spec] += elements
    return out


def _table(fp: FamilyPlan, name: str) -> Table:
    family = Family.of(fp.version)
    settings = FamilySettings(fp.masquerade, fp.cluster_cidrs, fp.nodeport_cidrs, fp.service_cidrs)
    return assemble(fp.version, settings, (port_objects(p, family) for p in fp.ports), fp.cluster_ips, name)
