"""The apply decision: what to send so that the kernel holds the planned tables, given what is
live (svcctl.nftables.live). Pure: no kernel here, tests feed it recorded listings.

Per table:
- missing: ``create table`` (refused if a table of that name exists that svcctl cannot see:
  someone else's) and the whole table;
- of another frame (its marker set ``frame-<hash>`` is absent: other node options, another
  svcctl version): deleted and loaded whole, losing its session-affinity state;
- of the same frame with a hook chain deleted by hand: reloaded whole in place, which restores
  it and keeps the affinity state;
- otherwise only what changed: chains whose name is new (a chain's name hashes its rules, so a
  changed chain has a new name), elements added or removed, chains and affinity sets that are
  gone. An unchanged plan sends nothing at all.

The operations come in one order; transaction.stages splits them into the commits that carry
them (new chains first: a map may not point at a chain created in the same commit).
"""

from __future__ import annotations

from typing import Iterable

from ..conntrack import UdpFrontend
from .frame import AFFINITY, EXT, FRAME_CHAINS, NODEPORT_CIDRS, PORT_CHAIN_KINDS, SERVICE_IPS, SERVICE_NODEPORTS, UDP_ENDPOINTS, per_port
from .live import Key, LiveTable
from .objects import Element, Ruleset, Table, Verdict
from .transaction import (
    AddElements,
    AddObjects,
    CreateTable,
    DeleteChain,
    DeleteElements,
    DeleteSet,
    DeleteTable,
    LoadTable,
    Operation,
    TableRef,
    Transaction,
)

_FRAME_CHAIN_NAMES = frozenset(c.name for c in FRAME_CHAINS)
ROUTING_MAPS = (SERVICE_IPS.name, SERVICE_NODEPORTS.name)  # their elements lead to a DNAT


def _verdict_key(verdict: Verdict | None) -> tuple[str, str] | None:
    return None if verdict is None else (verdict.kind.value, verdict.chain)


def removal_order(name: str) -> tuple[int, str]:
    # A chain can only be deleted once nothing refers to it: ext- chains jump to svc-/local- ones.
    return (0 if name.startswith(f"{EXT}-") else 1, name)


def _stale(t: Table, live: LiveTable) -> tuple[list[str], list[str]]:
    """Per-port chains and affinity sets that are live but no longer planned."""
    wanted = {c.name for c in t.endpoint_chains} | {e.name for e in t.external_chains}
    chains = sorted((n for n in live.chains if per_port(n, PORT_CHAIN_KINDS) and n not in wanted), key=removal_order)
    planned_sets = {s.name for s in t.sets}
    sets = sorted(n for n in live.sets if per_port(n, (AFFINITY,)) and n not in planned_sets)
    return chains, sets


def _new_objects(t: Table, live: LiveTable) -> list[Operation]:
    """The planned affinity sets and per-port chains the live table lacks (none or one op)."""
    new_sets = tuple(s for s in t.sets if s.dynamic and s.name not in live.sets)
    new_endpoint_chains = tuple(c for c in t.endpoint_chains if c.name not in live.chains)
    new_external_chains = tuple(e for e in t.external_chains if e.name not in live.chains)
    if new_sets or new_endpoint_chains or new_external_chains:
        return [AddObjects(TableRef(t.family, t.name), new_sets, new_endpoint_chains, new_external_chains)]
    return []


def table_update(t: Table, live: LiveTable) -> list[Operation]:
    """The operations that turn a live table of the same frame into the planned one, in the
    order they must run: new sets and chains first (elements and rules refer to them), old
    elements out before new ones in, stale chains (and the sets their rules used) last."""
    ref = TableRef(t.family, t.name)
    ops = _new_objects(t, live)
    added = []
    for s in t.static_sets:
        have = live.elements.get(s.name, {})
        want = {el.key: el for el in s.elements}
        gone = tuple(Element(k) for k, v in have.items() if k not in want or _verdict_key(want[k].verdict) != v)
        new = tuple(el for k, el in want.items() if k not in have or _verdict_key(el.verdict) != have[k])
        if gone:
            ops.append(DeleteElements(ref, s, gone))
        if new:
            added.append(AddElements(ref, s, new))
    ops += added
    chains, sets = _stale(t, live)
    ops += [DeleteChain(ref, n) for n in chains]
    ops += [DeleteSet(ref, n) for n in sets]
    return ops


def _udp_endpoints(t: Table) -> set[Key]:
    return {el.key for s in t.static_sets if s.name == UDP_ENDPOINTS.name for el in s.elements}


def udp_frontends(version: int, map_name: str, keys: Iterable[Key], nodeport_cidrs: tuple[str, ...]) -> set[UdpFrontend]:
    """The UDP ports among keys of a map that DNATs (ROUTING_MAPS): service-ips (address .
    protocol . port) or service-nodeports (protocol . port, on the node's addresses within
    ``nodeport_cidrs``: none, all of them)."""
    if map_name == SERVICE_IPS.name:
        return {UdpFrontend(version, k[0], int(k[2])) for k in keys if k[1] == "udp"}
    return {UdpFrontend(version, "", int(k[1]), nodeport_cidrs) for k in keys if k[0] == "udp"}


def _new_udp_frontends(t: Table, live: LiveTable, hooked: bool) -> set[UdpFrontend]:
    """The UDP ports the planned maps DNAT and the live ones did not: their flows so far were
    not DNATed. Unless the live table is of this frame with its hook chains (``hooked``), every
    one: a missing table did not DNAT, one of another frame is not read, and with a hook chain
    deleted by hand the maps' elements led nowhere."""
    new: set[UdpFrontend] = set()
    within = tuple(el.key[0] for s in t.static_sets if s.name == NODEPORT_CIDRS.name for el in s.elements)
    for s in t.static_sets:
        if s.name in ROUTING_MAPS:
            had = live.elements.get(s.name, {}) if hooked else {}
            new |= udp_frontends(t.family.version, s.name, (el.key for el in s.elements if el.key not in had), within)
    return new


def describe(ops: list[Operation]) -> str:
    """What an update sends, in a few words: chains and elements, and the session-affinity sets
    when some come or go (a set deleted by hand comes back alone: the summary must not read
    as if nothing was sent)."""
    added = sum(len(o.endpoint_chains) + len(o.external_chains) for o in ops if isinstance(o, AddObjects))
    removed = sum(isinstance(o, DeleteChain) for o in ops)
    elements = sum(len(o.elements) for o in ops if isinstance(o, (AddElements, DeleteElements)))
    sets_added = sum(len(o.sets) for o in ops if isinstance(o, AddObjects))
    sets_removed = sum(isinstance(o, DeleteSet) for o in ops)
    sets = f", affinity sets: {sets_added} added, {sets_removed} removed" if sets_added or sets_removed else ""
    return f"{added} chain(s) added, {removed} removed, {elements} element change(s){sets}"


def transaction(ruleset: Ruleset, live: list[LiveTable], frames: dict[str, str], reload: bool = False) -> Transaction:
    """What to send so that the kernel holds ``ruleset``; see the module docstring. ``frames``:
    the planned frame marker of each table, by scope. ``reload``: load tables of the same frame
    whole in place even when intact (``svcctl run``'s periodic full sync: it also repairs rules
    edited by hand inside chains, which the live state read here does not show)."""
    removed_udp: set[Key] = set()
    for t, lt in zip(ruleset.tables, live, strict=True):
        removed_udp |= set(lt.elements.get(UDP_ENDPOINTS.name, {})) - _udp_endpoints(t)
    removed = tuple(sorted((ip, int(port)) for ip, port in removed_udp))
    same_frame = [lt.exists and frames[t.scope] in lt.sets for t, lt in zip(ruleset.tables, live, strict=True)]
    hooked = [same and _FRAME_CHAIN_NAMES <= lt.chains for same, lt in zip(same_frame, live, strict=True)]
    fresh = tuple(sorted(set().union(*map(_new_udp_frontends, ruleset.tables, live, hooked))))
    intact = [whole and not reload for whole in hooked]
    if all(intact):
        per_table = [(t, table_update(t, lt)) for t, lt in zip(ruleset.tables, live, strict=True)]
        changed = [(t, ops) for t, ops in per_table if ops]
        if not changed:
            return Transaction((), "unchanged", "no changes", removed, fresh)
        summary = "; ".join(f"{t.family.value}: {describe(ops)}" for t, ops in changed)
        return Transaction(tuple(op for _, ops in changed for op in ops), "update", summary, removed, fresh)
    # Otherwise load everything. Tables of another frame are deleted first (a flush cannot
    # change a set's type or a hook chain's priority); tables of the same frame are reloaded in
    # place, which keeps their affinity state, and lose their stale chains and sets at the end.
    head: list[Operation] = []
    tail: list[Operation] = []
    created, replaced, reloaded = [], [], []
    for t, lt, same, whole in zip(ruleset.tables, live, same_frame, intact, strict=True):
        ref = TableRef(t.family, t.name)
        if not lt.exists:
            head.append(CreateTable(ref))
            created.append(t.scope)
        elif not same:
            head.append(DeleteTable(ref))
            replaced.append(t.scope)
        else:
            if not whole and not reload:
                reloaded.append(t.scope)
            # New chains first, in a commit of their own (transaction.stages); the load then
            # flushes and refills them with everything else.
            head += _new_objects(t, lt)
            chains, sets = _stale(t, lt)
            tail += [DeleteChain(ref, n) for n in chains] + [DeleteSet(ref, n) for n in sets]
    summary = ", ".join(
        x for x in (
            f"created {' and '.join(created)}" if created else "",
            f"replaced {' and '.join(replaced)} (new layout: session affinity state reset)" if replaced else "",
            f"reloaded {' and '.join(reloaded)} (a hook chain was missing)" if reloaded else "",
        ) if x
    )
    loads = [LoadTable(t) for t in ruleset.tables]
    return Transaction((*head, *loads, *tail), "full", summary or "reloaded whole", removed, fresh)
