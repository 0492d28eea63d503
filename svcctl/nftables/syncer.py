"""Keeping svcctl's tables in step with a plan that changes a few Services at a time
(``svcctl run``).

The syncer holds every Service's nftables objects (layout.port_objects) and what it last
committed. An update commit sends only what the changed Services changed: their new chains and
affinity sets, the elements they added or removed (elements several ports share, hairpin and
UDP endpoints, are counted, and leave only with the last port), their chains that are gone: the
operations decide.table_update would choose, decided from memory instead of from a listing of
the kernel (0.7 s at 10,000 Services). A full commit assembles the whole ruleset and goes
through transport.apply, reading the kernel: at start (adopting the live tables without
disturbing them), for the periodic resync (repairing tables, chains, sets and elements changed
by hand), after a refused or failed commit, and with ``reload`` loading the tables whole.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator, NamedTuple

from ..backends import ApplyResult
from ..conntrack import UdpFrontend, committed
from ..kernel import KernelError, locked
from ..options import Options
from ..plan import ServicePlan, family_settings
from . import frame, transport
from .decide import ROUTING_MAPS, describe, removal_order, udp_frontends
from .frame import FRAME_CHAINS, PORT_CHAIN_KINDS, per_port
from ..formats import address_order
from .layout import NODE_WIDE, PortObjects, assemble, port_objects
from .live import read_live
from .nft import Nft
from .objects import Element, EndpointChain, ExternalChain, Family, NamedSet, Ruleset, Verdict
from .render import frame_name
from .transaction import AddElements, AddObjects, DeleteChain, DeleteElements, DeleteSet, Operation, TableRef

VERSIONS = (4, 6)
Name = tuple[str, str]
FRAME_CHAIN_NAMES = frozenset(c.name for c in FRAME_CHAINS)


class _Service(NamedTuple):
    """One Service's objects in one table."""

    cluster_ip: str
    ports: tuple[PortObjects, ...]

    def elements(self) -> Iterator[tuple[str, Element]]:
        """Its elements of the frame's sets, by set name (its cluster IP one of them)."""
        if self.cluster_ip:
            yield frame.CLUSTER_IPS.name, Element((self.cluster_ip,))
        for p in self.ports:
            for spec, elements in p.elements.items():
                for el in elements:
                    yield spec.name, el

    def chains(self) -> dict[str, EndpointChain | ExternalChain]:
        chains: dict[str, EndpointChain | ExternalChain] = {c.name: c for p in self.ports for c in p.endpoint_chains}
        return chains | {c.name: c for p in self.ports for c in p.external_chains}

    def affinity(self) -> dict[str, NamedSet]:
        return {s.name: s for p in self.ports for s in p.affinity_sets}

    def counts(self) -> dict[str, int]:
        return {
            "chains": sum(len(p.endpoint_chains) + len(p.external_chains) for p in self.ports),
            "elements": sum(1 for _ in self.elements()),
        }


_NONE = _Service("", ())  # a Service without rules in a table


@dataclass
class _Counted:
    """One table's per-Service content as committed: chain and affinity set names, and each
    frame set's elements with the number of Services' ports that hold them."""

    chains: set[str] = field(default_factory=set)
    sets: set[str] = field(default_factory=set)
    elements: dict[str, dict[tuple[str, ...], list[Any]]] = field(default_factory=lambda: defaultdict(dict))  # key -> [count, verdict]

    def add(self, service: _Service, step: int) -> None:
        for name, el in service.elements():
            held = self.elements[name]
            count = held.setdefault(el.key, [0, el.verdict])
            count[0] += step
            if step > 0:
                count[1] = el.verdict
            elif count[0] == 0:
                del held[el.key]


class Syncer:
    """The nftables back end's syncer (svcctl.backends.Syncer)."""

    def __init__(self, options: Options, nft: Nft | None):
        """``nft``: the kernel (transport.privileged()); None for a syncer that only lays out."""
        self.table = options.table
        self._settings = {v: family_settings(v, options) for v in VERSIONS}
        self._services: dict[int, dict[Name, _Service]] = {v: {} for v in VERSIONS}
        self._counts = {"chains": 0, "elements": 0}
        self._before: dict[tuple[int, Name], _Service] = {}  # as committed, for Services changed since
        self._committed: dict[int, _Counted] | None = None  # None: unknown, read the kernel
        self._nft = nft

    def reconfigure(self, options: Options) -> None:
        self._settings = {v: family_settings(v, options) for v in VERSIONS}
        self._committed = None  # the frame's sets (service CIDRs) changed: decide from the kernel

    def update(self, version: int, service: Name, plan: ServicePlan | None) -> None:
        family = Family.of(version)
        current = self._services[version]
        old = current.get(service, _NONE)
        self._before.setdefault((version, service), old)
        new = _NONE if plan is None else _Service(plan.cluster_ip, tuple(port_objects(p, family) for p in plan.ports))
        if plan is None:
            current.pop(service, None)
        else:
            current[service] = new
        for kind, count in new.counts().items():
            self._counts[kind] += count - old.counts()[kind]

    def ruleset(self) -> Ruleset:
        """Everything, as a full compile would lay it out (Services in namespace/name order)."""
        tables = []
        for v in VERSIONS:
            services = [self._services[v][name] for name in sorted(self._services[v])]
            cluster_ips = sorted({s.cluster_ip for s in services}, key=address_order)
            tables.append(assemble(v, self._settings[v], (p for s in services for p in s.ports), cluster_ips, self.table))
        return Ruleset(tuple(tables))

    def counts(self) -> dict[str, int]:
        """How much is in the tables: per-port chains and frame set elements."""
        return dict(self._counts)

    def commit(self, verify: bool = False, reload: bool = False) -> ApplyResult:
        """Send what changed since the last commit. ``verify``: read the kernel and repair what
        differs; ``reload``: load the tables whole. Raises Refused (nothing changed; the next
        commit reads the kernel) or KernelError."""
        if self._committed is not None and verify and not reload and not self._before and self._matches_kernel():
            return ApplyResult(False, "no changes", "", (), ())
        if verify or reload or self._committed is None:
            return self._full(reload)
        if not self._before:
            return ApplyResult(False, "no changes", "", (), ())
        ops: list[Operation] = []
        gone_udp: set[tuple[str, ...]] = set()
        new_udp: set[UdpFrontend] = set()
        counted = self._committed
        self._committed = None  # until the kernel took it: counted is changed in place
        for v in VERSIONS:
            family_ops, removed, new = self._delta(v, counted[v])
            ops += family_ops
            gone_udp |= removed
            new_udp |= new
        if ops:
            assert self._nft is not None, "a syncer without the kernel only lays out"
            with locked(self.table):
                transport.send(self._nft, tuple(ops))
        self._committed = counted
        self._before.clear()
        udp = tuple(sorted((ip, int(port)) for ip, port in gone_udp))
        return committed(bool(ops), describe(ops) if ops else "no changes", udp, tuple(sorted(new_udp)))

    def _delta(self, version: int, counted: _Counted) -> tuple[list[Operation], set[tuple[str, ...]], set[UdpFrontend]]:
        """The operations that commit the changed Services, the UDP endpoints they remove and
        the UDP frontends they start to DNAT."""
        ref = TableRef(Family.of(version), self.table)
        changed = [(name, before) for (v, name), before in self._before.items() if v == version]
        new_sets: dict[str, NamedSet] = {}
        new_chains: dict[str, EndpointChain | ExternalChain] = {}
        gone_chains: set[str] = set()
        gone_sets: set[str] = set()
        touched: dict[str, dict[tuple[str, ...], tuple[bool, Verdict | None]]] = defaultdict(dict)
        for name, before in changed:
            after = self._services[version].get(name, _NONE)
            old_chains, now_chains = before.chains(), after.chains()
            new_chains.update({n: c for n, c in now_chains.items() if n not in counted.chains})
            gone_chains |= old_chains.keys() - now_chains.keys()
            old_sets, now_sets = before.affinity(), after.affinity()
            new_sets.update({n: a for n, a in now_sets.items() if n not in counted.sets})
            gone_sets |= old_sets.keys() - now_sets.keys()
            for service in (before, after):
                for set_name, el in service.elements():
                    if el.key not in touched[set_name]:
                        now = counted.elements[set_name].get(el.key)
                        touched[set_name][el.key] = (now is not None, now[1] if now else None)
            counted.add(before, -1)
            counted.add(after, +1)
        counted.chains -= gone_chains
        counted.chains |= new_chains.keys()
        counted.sets -= gone_sets
        counted.sets |= new_sets.keys()
        ops: list[Operation] = []
        if new_sets or new_chains:
            endpoint = tuple(c for c in new_chains.values() if isinstance(c, EndpointChain))
            external = tuple(c for c in new_chains.values() if isinstance(c, ExternalChain))
            ops.append(AddObjects(ref, tuple(new_sets.values()), endpoint, external))
        added: list[Operation] = []
        removed_udp: set[tuple[str, ...]] = set()
        new_udp: set[UdpFrontend] = set()
        for spec in frame.STATIC_SETS:
            held = counted.elements.get(spec.name, {})
            out, into, started = [], [], []
            for key, (was, verdict) in touched.get(spec.name, {}).items():
                now = held.get(key)
                if was and (now is None or now[1] != verdict):
                    out.append(Element(key))
                if now is not None and (not was or now[1] != verdict):
                    into.append(Element(key, now[1]))
                    if not was:
                        started.append(key)
            if spec.name in ROUTING_MAPS:
                new_udp |= udp_frontends(version, spec.name, started, self._settings[version].nodeport_cidrs)
            if out:
                ops.append(DeleteElements(ref, _frame_sets(version)[spec.name], tuple(sorted(out))))
                if spec is frame.UDP_ENDPOINTS:
                    removed_udp |= {el.key for el in out}
            if into:
                added.append(AddElements(ref, _frame_sets(version)[spec.name], tuple(sorted(into))))
        ops += added
        ops += [DeleteChain(ref, n) for n in sorted(gone_chains - new_chains.keys(), key=removal_order)]
        ops += [DeleteSet(ref, n) for n in sorted(gone_sets - new_sets.keys())]
        return ops, removed_udp, new_udp

    def _matches_kernel(self) -> bool:
        """Whether the kernel holds what was last committed: the tables of this frame with their
        hook chains, the per-port chains and affinity sets, every element of the frame's sets.
        (What a full commit would read, without laying out the whole ruleset to compare: the
        periodic resync of an unchanged node costs the listing alone.)"""
        frame_only = Ruleset(tuple(assemble(v, self._settings[v], (), (), self.table) for v in VERSIONS))
        frames = {t.scope: frame_name(t) for t in frame_only.tables}
        assert self._nft is not None and self._committed is not None
        with locked(self.table):
            live = read_live(self._nft, frame_only, frames)
        for t, lt in zip(frame_only.tables, live):
            counted = self._committed[t.family.version]
            if not (lt.exists and frames[t.scope] in lt.sets and FRAME_CHAIN_NAMES <= lt.chains):
                return False
            if {n for n in lt.chains if per_port(n, PORT_CHAIN_KINDS)} != counted.chains:
                return False
            if {n for n in lt.sets if per_port(n, (frame.AFFINITY,))} != counted.sets:
                return False
            for spec, declared in zip(frame.STATIC_SETS, t.static_sets, strict=True):
                want: dict[tuple[str, ...], tuple[str, str] | None]
                if spec in NODE_WIDE:
                    want = {el.key: None for el in declared.elements}
                else:
                    want = {k: None if v[1] is None else (v[1].kind.value, v[1].chain) for k, v in counted.elements.get(spec.name, {}).items()}
                if lt.elements.get(spec.name, {}) != want:
                    return False
        return True

    def _full(self, reload: bool) -> ApplyResult:
        ruleset = self.ruleset()
        try:
            result = transport.apply(ruleset, reload=reload)
        except KernelError:
            self._committed = None
            raise
        self._committed = self._count()
        self._before.clear()
        return result

    def _count(self) -> dict[int, _Counted]:
        """Everything updated so far, counted as committed."""
        counted = {v: _Counted() for v in VERSIONS}
        for v in VERSIONS:
            for service in self._services[v].values():
                counted[v].add(service, +1)
                counted[v].chains |= service.chains().keys()
                counted[v].sets |= service.affinity().keys()
        return counted


@lru_cache(maxsize=2)
def _frame_sets(version: int) -> dict[str, NamedSet]:
    """The frame's sets as declared in a table of this family (element operations name them)."""
    family = Family.of(version)
    return {s.name: NamedSet(s.name, family.key_type(s), s.comment, is_map=s.is_map, interval=s.interval) for s in frame.STATIC_SETS}
