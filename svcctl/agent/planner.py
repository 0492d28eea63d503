"""Resolved Services and their plan, kept up to date one Service at a time.

A full compile of 10,000 Services takes seconds; a change of one endpoint must reach the kernel
in milliseconds. So each stage redoes only what the change reaches, and gives the same result as
a full compile of the accepted objects (tests/test_agent_planner.py checks it after random
changes):

- a Service is resolved again when its own object, its EndpointSlices (by the
  ``kubernetes.io/service-name`` label, before and after the change), its Endpoints, or a Pod of
  its namespace that its selector matches (before or after) changed; and when a Node's zone
  changed, if its endpoints' zones and hints may come from the Nodes (a trafficDistribution that
  svcctl emulates the EndpointSlice controller for), or if the Node is this one (without
  --node-zone) and some endpoint of the Service has hints (svcctl.topology);
- allocation: a Service whose cluster IPs and node ports all come from its spec needs nothing
  from the others; while any Service needs something allocated, a change of any Service
  allocates for all again (what it gets depends on what the others hold) and those whose
  allocation changed are resolved again;
- claims (who holds an address and port two Services ask for, svcctl.plan.dispatch): kept per
  key, with the Services asking for it; a Service whose claims changed, and any Service that won
  or lost a key through it, is planned again;
- the plan of a Service (its ports' PortPlans, per family) is made again only for those, and
  handed on only if it differs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from ..allocate import Allocation, allocate_all, explicit
from ..model import Service
from ..options import Options
from ..plan import ServicePlan, family_settings, service_plan
from ..plan.dispatch import Claims, Key as ClaimKey, claimed, taken
from ..problems import Problem
from ..resolve import ResolvedService, resolve_service
from ..topology import preference
from ..validate import SERVICE_NAME_LABEL, Entry
from .state import Key, State

VERSIONS = (4, 6)
Name = tuple[str, str]  # namespace, name
Changes = dict[Key, tuple[Entry[Any] | None, Entry[Any] | None]]


class _Rank(NamedTuple):
    """Who gets a contested key (svcctl.plan.dispatch.claim): ClusterIP ports first, then the
    first Service in namespace/name order."""

    external: bool
    namespace: str
    name: str


class _Claims:
    """One family's claims, kept per key."""

    def __init__(self) -> None:
        self.owners: dict[ClaimKey, str] = {}
        self._contenders: dict[ClaimKey, dict[str, _Rank]] = defaultdict(dict)
        self._contested: set[ClaimKey] = set()  # keys more than one Service asks for
        self._wanted: dict[str, dict[ClaimKey, _Rank]] = {}

    def update(self, ref: str, svc: ResolvedService | None, version: int) -> set[Name]:
        """Record what a Service (None: gone) asks for; the Services whose keys changed hands."""
        wanted: dict[ClaimKey, _Rank] = {}
        if svc is not None:
            internal, external = claimed(svc, version)
            for keys, is_external in ((internal, False), (external, True)):
                for key in keys:
                    wanted.setdefault(key, _Rank(is_external, svc.namespace, svc.name))
        before = self._wanted.pop(ref, {})
        if wanted:
            self._wanted[ref] = wanted
        moved: set[Name] = set()
        for key in before.keys() | wanted.keys():
            contenders = self._contenders[key]
            contenders.pop(ref, None)
            if key in wanted:
                contenders[ref] = wanted[key]
            owner = min(contenders, key=contenders.__getitem__) if contenders else None
            if owner != self.owners.get(key):
                for who in (owner, self.owners.get(key)):
                    if who is not None and who != ref:
                        moved.add(_name(who))
                if owner is None:
                    del self.owners[key]
                else:
                    self.owners[key] = owner
            if not contenders:
                del self._contenders[key]
            if len(contenders) > 1:
                self._contested.add(key)
            else:
                self._contested.discard(key)
        return moved

    def warnings(self) -> list[str]:
        return sorted(
            taken(ref, key, self.owners[key])
            for key in self._contested
            for ref, rank in self._contenders[key].items()
            if rank.external and ref != self.owners[key]
        )


def _zone(node: Entry[Any] | None) -> str:
    return node.obj.zone if node is not None else ""


def _name(ref: str) -> Name:
    namespace, _, name = ref.partition("/")
    return (namespace, name)


class Planner:
    """Per Service and family, the PortPlans of the accepted objects of a State."""

    def __init__(self, options: Options):
        self.options = options
        self._settings = {v: family_settings(v, options) for v in VERSIONS}
        self.resolved: dict[Name, ResolvedService] = {}
        self.plans: dict[int, dict[Name, ServicePlan]] = {v: {} for v in VERSIONS}
        self._allocations: dict[str, Allocation] = {}
        self._allocating: set[str] = set()  # Services that need something allocated
        self._allocation_problems: list[Problem] = []
        self._selectors: dict[str, set[Name]] = defaultdict(set)  # namespace -> Services with a selector
        self._distributed: set[Name] = set()  # Services whose endpoints svcctl would give hints (trafficDistribution)
        self._hinted: set[Name] = set()  # Services with hinted endpoints: they depend on this node's zone
        self._claims = {v: _Claims() for v in VERSIONS}
        self._endpoints: dict[Name, int] = {}
        self._endpoint_total = 0
        self._health_checks: dict[Name, tuple[int, int]] = {}

    def totals(self) -> dict[str, int]:
        return {"services": len(self.resolved), "endpoints": self._endpoint_total}

    def health_checks(self) -> dict[Name, tuple[int, int]]:
        """The Services with a healthCheckNodePort: (that port, how many local endpoints are
        ready). As kube-proxy counts them: distinct addresses, over all ports; terminating ones
        do not count, so a node with only those is drained by the load balancer."""
        return dict(self._health_checks)

    def problems(self) -> list[Problem]:
        return list(self._allocation_problems)

    def warnings(self) -> list[str]:
        return [f"IPv{v}: {w}" for v in VERSIONS for w in self._claims[v].warnings()]

    def update(self, state: State, changes: Changes) -> dict[tuple[int, Name], ServicePlan | None]:
        """Take the changes of ``state.apply``; returns the Services whose plan changed, per
        family: (version, name) -> the new plan (None when it has none there any more)."""
        dirty = self._reached(state, changes)
        dirty |= self._allocate(state, changes)
        to_plan: dict[int, set[Name]] = {v: set() for v in VERSIONS}
        for name in dirty:
            before = self.resolved.get(name)
            after = self._resolve(state, name)
            if before == after:
                continue
            self._count(state, name, after)
            if after is None:
                del self.resolved[name]
            else:
                self.resolved[name] = after
            if after is not None and after.node is not None:
                self._hinted.add(name)
            else:
                self._hinted.discard(name)
            ref = f"{name[0]}/{name[1]}"
            for v in VERSIONS:
                to_plan[v] |= {name} | self._claims[v].update(ref, after, v)
        out: dict[tuple[int, Name], ServicePlan | None] = {}
        for v in VERSIONS:
            claims = Claims(self._claims[v].owners, ())
            plans = self.plans[v]
            for name in to_plan[v]:
                svc = self.resolved.get(name)
                new = service_plan(svc, v, claims, self._settings[v]) if svc else None
                if new != plans.get(name):
                    out[(v, name)] = new
                    if new is None:
                        plans.pop(name, None)
                    else:
                        plans[name] = new
        return out

    def _reached(self, state: State, changes: Changes) -> set[Name]:
        """The Services whose inputs changed."""
        dirty: set[Name] = set()
        for key, (before, after) in changes.items():
            if key.kind in ("Service", "Endpoints"):
                dirty.add((key.namespace, key.name))
            if key.kind == "Service":
                name = (key.namespace, key.name)
                selectors = self._selectors[key.namespace]
                selectors.discard(name)
                if after is not None and after.obj.spec.selector:
                    selectors.add(name)
                if after is not None and preference(after.obj) is not None:
                    self._distributed.add(name)
                else:
                    self._distributed.discard(name)
            elif key.kind == "Node":
                if _zone(before) != _zone(after):
                    dirty |= self._distributed  # the zones (and so the hints) of their endpoints
                    if key.name == self.options.node_name and not self.options.node_zone:
                        dirty |= self._hinted  # this node's zone, which their hints are read against
            elif key.kind == "EndpointSlice":
                for entry in (before, after):
                    owner = entry.obj.metadata.labels.get(SERVICE_NAME_LABEL) if entry else None
                    if owner:
                        dirty.add((key.namespace, owner))
            elif key.kind == "Pod":
                labels = [e.obj.metadata.labels for e in (before, after) if e is not None]
                for name in self._selectors.get(key.namespace, ()):
                    entry = state.service(*name)
                    selector = entry.obj.spec.selector if entry else None
                    if selector and any(all(lb.get(k) == v for k, v in selector.items()) for lb in labels):
                        dirty.add(name)
        return dirty

    def _allocate(self, state: State, changes: Changes) -> set[Name]:
        """Allocation for the changed Services; the Services whose allocation changed."""
        changed = [(k, after) for k, (_, after) in changes.items() if k.kind == "Service"]
        if not changed:
            return set()
        dirty: set[Name] = set()
        found: dict[str, Allocation | None] = {}
        for key, after in changed:
            ref = f"{key.namespace}/{key.name}"
            found[ref] = explicit(after, self.options) if after is not None else None
            if after is not None and found[ref] is None:
                self._allocating.add(ref)
            else:
                self._allocating.discard(ref)
        if not self._allocating and not self._allocation_problems:
            for ref, alloc in found.items():
                if alloc is None:
                    self._allocations.pop(ref, None)
                else:
                    self._allocations[ref] = alloc
            return dirty
        allocations, problems = allocate_all(state.services(), self.options)
        failed = {p.ref for p in problems}
        self._allocation_problems = problems
        for ref in self._allocations.keys() | allocations.keys():
            alloc = allocations.get(ref) if ref not in failed else None
            if alloc != self._allocations.get(ref):
                dirty.add(_name(ref))
                if alloc is None:
                    self._allocations.pop(ref, None)
                else:
                    self._allocations[ref] = alloc
        return dirty

    def _count(self, state: State, name: Name, svc: ResolvedService | None) -> None:
        self._endpoint_total -= self._endpoints.pop(name, 0)
        self._health_checks.pop(name, None)
        if svc is None:
            return
        self._endpoints[name] = sum(len(p.backends) for p in svc.ports)
        self._endpoint_total += self._endpoints[name]
        entry = state.service(*name)
        port = entry.obj.spec.health_check_node_port if entry else 0
        if port:
            local = {b.address for p in svc.ports for b in p.backends if b.local and b.ready}
            self._health_checks[name] = (port, len(local))

    def _resolve(self, state: State, name: Name) -> ResolvedService | None:
        entry = state.service(*name)
        alloc = self._allocations.get(f"{name[0]}/{name[1]}")
        if entry is None or alloc is None:
            return None
        svc: Service = entry.obj
        return resolve_service(
            svc, alloc, state.slices.get(name, {}).values(), state.endpoints(*name), state.pods.get(name[0], {}).values(), self.options,
            state.zones,
        )
