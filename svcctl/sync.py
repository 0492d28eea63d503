"""What an apply sends to the kernel: the difference between the live tables and the plan.

Three cases, per apply:
- a table is missing, or its frame differs (its marker set ``frame-<hash>`` is absent: other
  node options, another svcctl version): the full ruleset, with such tables deleted first (their
  session-affinity state goes with them);
- otherwise only what changed: chains whose name is new (a chain's name hashes its rules, so a
  changed chain has a new name), elements added or removed, chains and affinity sets that are
  gone. The live state needed is cheap to read: chain and set names, and the static sets'
  elements; the rules themselves are never listed. An unchanged plan sends nothing at all;
- the same rule holds for ``delete``: svcctl's own tables, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .kernel import KernelError, Nft, owned_tables, present_tables
from .plan import AFFINITY, EXT, PORT_CHAIN_KINDS, Element, EndpointChain, ExternalChain, Family, NamedSet, Ruleset, Table, Verdict
from .render import frame_name, render_update

# The hook chains every table has (templates/ruleset.nft.j2): a table missing one is reloaded.
FRAME_CHAINS = frozenset(
    {
        "filter-prerouting", "filter-output-pre-dnat", "filter-input", "filter-forward", "filter-output",
        "endpoints-check", "reject-chain", "nat-prerouting", "nat-output", "nat-postrouting",
    }
)
UDP_ENDPOINTS = "udp-endpoints"

Key = tuple[str, ...]
VerdictKey = tuple[str, str]


@dataclass
class LiveTable:
    """What svcctl needs to know of one of its tables in the kernel."""

    family: Family
    name: str
    exists: bool = False
    chains: set[str] = field(default_factory=set)
    sets: set[str] = field(default_factory=set)
    elements: dict[str, dict[Key, VerdictKey | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class TableUpdate:
    family: Family
    table: str
    new_sets: tuple[NamedSet, ...]
    new_endpoint_chains: tuple[EndpointChain, ...]
    new_external_chains: tuple[ExternalChain, ...]
    removed_elements: tuple[tuple[NamedSet, tuple[Element, ...]], ...]
    added_elements: tuple[tuple[NamedSet, tuple[Element, ...]], ...]
    removed_chains: tuple[str, ...]
    removed_sets: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (
            self.new_sets or self.new_endpoint_chains or self.new_external_chains or self.removed_elements
            or self.added_elements or self.removed_chains or self.removed_sets
        )

    @property
    def summary(self) -> str:
        added = len(self.new_endpoint_chains) + len(self.new_external_chains)
        elements = sum(len(e) for _, e in self.added_elements) + sum(len(e) for _, e in self.removed_elements)
        return f"{added} chain(s) added, {len(self.removed_chains)} removed, {elements} element change(s)"


@dataclass(frozen=True)
class Transaction:
    script: str  # "" when nothing needs to change
    kind: str  # "unchanged", "update" or "full"
    summary: str
    removed_udp_endpoints: tuple[tuple[str, int], ...]  # conntrack entries to delete after the commit


# ---- reading the kernel -------------------------------------------------------------------


def _normalize(value: Any) -> Key:
    """A set element as the JSON listing gives it -> the plan's key: a tuple of strings."""
    if isinstance(value, dict):
        if "concat" in value:
            return tuple(x for part in value["concat"] for x in _normalize(part))
        if "prefix" in value:
            return (f"{value['prefix']['addr']}/{value['prefix']['len']}",)
        if "range" in value:
            low, high = value["range"]
            return (f"{low}-{high}",)
        if "elem" in value:
            return _normalize(value["elem"]["val"])
    return (str(value),)


def _verdict(value: Any) -> VerdictKey:
    (kind, arg), = value.items()
    return (kind, arg["target"] if isinstance(arg, dict) else "")


def verdict_key(verdict: Verdict | None) -> VerdictKey | None:
    return None if verdict is None else (verdict.kind.value, verdict.chain)


def read_live(nft: Nft, ruleset: Ruleset) -> list[LiveTable]:
    """The live state of svcctl's tables, read with a few cheap list commands."""
    tables = present_tables(nft)
    ours = owned_tables(nft)
    out = []
    for t in ruleset.tables:
        live = LiveTable(t.family, t.name, exists=(t.family.value, t.name) in tables)
        out.append(live)
        if not live.exists:
            continue
        if (t.family.value, t.name) not in ours:
            raise KernelError(
                f"table {t.family.value} {t.name} exists and was not made by svcctl (it has no frame-* marker set); "
                "svcctl leaves it alone: choose another --table"
            )
        scope = f"{t.family.value} {t.name}"
        live.chains = {
            o["chain"]["name"] for o in nft.query(f"list chains {t.family.value}", terse=True) if o["chain"]["table"] == t.name
        }
        for what in ("set", "map"):
            live.sets |= {
                o[what]["name"] for o in nft.query(f"list {what}s {t.family.value}", terse=True) if o[what]["table"] == t.name
            }
        # A table of another frame is replaced whole: of its elements only the UDP endpoints
        # matter (for the conntrack cleanup after the apply).
        wanted = t.static_sets if frame_name(t) in live.sets else [s for s in t.static_sets if s.name == UDP_ENDPOINTS]
        for s in wanted:
            kind = "map" if s.is_map else "set"
            found = nft.query(f"list {kind} {scope} {s.name}") if s.name in live.sets else []
            elements: dict[Key, VerdictKey | None] = {}
            for obj in found:
                for elem in obj[kind].get("elem", []):
                    if s.is_map:
                        elements[_normalize(elem[0])] = _verdict(elem[1])
                    else:
                        elements[_normalize(elem)] = None
            live.elements[s.name] = elements
    return out


# ---- deciding -----------------------------------------------------------------------------


def _removal_order(name: str) -> tuple[int, str]:
    # A chain can only be deleted once nothing refers to it: ext- chains jump to svc-/local- ones.
    return (0 if name.startswith(f"{EXT}-") else 1, name)


def _per_port(name: str, kinds: tuple[str, ...]) -> bool:
    """Whether a live object is one the plan names per Service port: only those are added and
    removed one by one; the frame's chains and sets never are."""
    return name.startswith(tuple(f"{kind}-" for kind in kinds))


def table_update(t: Table, live: LiveTable) -> TableUpdate:
    """The changes that turn a live table of the same frame into the planned one."""
    live_chains = {n for n in live.chains if _per_port(n, PORT_CHAIN_KINDS)}
    wanted_chains = {c.name for c in t.endpoint_chains} | {e.name for e in t.external_chains}
    removed_elements, added_elements = [], []
    for s in t.static_sets:
        have = live.elements.get(s.name, {})
        want = {el.key: el for el in s.elements}
        gone = tuple(Element(k) for k, v in have.items() if k not in want or verdict_key(want[k].verdict) != v)
        new = tuple(el for k, el in want.items() if k not in have or verdict_key(el.verdict) != have[k])
        if gone:
            removed_elements.append((s, gone))
        if new:
            added_elements.append((s, new))
    wanted_sets = {s.name for s in t.sets}
    return TableUpdate(
        family=t.family,
        table=t.name,
        new_sets=tuple(s for s in t.sets if s.dynamic and s.name not in live.sets),
        new_endpoint_chains=tuple(c for c in t.endpoint_chains if c.name not in live_chains),
        new_external_chains=tuple(e for e in t.external_chains if e.name not in live_chains),
        removed_elements=tuple(removed_elements),
        added_elements=tuple(added_elements),
        removed_chains=tuple(sorted(live_chains - wanted_chains, key=_removal_order)),
        removed_sets=tuple(sorted(n for n in live.sets if _per_port(n, (AFFINITY,)) and n not in wanted_sets)),
    )


def _udp_endpoints(t: Table) -> set[Key]:
    return {el.key for s in t.static_sets if s.name == UDP_ENDPOINTS for el in s.elements}


def transaction(ruleset: Ruleset, full_text: str, live: list[LiveTable]) -> Transaction:
    """What to send so that the kernel holds ``ruleset``; see the module docstring."""
    removed_udp: set[Key] = set()
    for t, lt in zip(ruleset.tables, live):
        removed_udp |= set(lt.elements.get(UDP_ENDPOINTS, {})) - _udp_endpoints(t)
    removed = tuple(sorted((ip, int(port)) for ip, port in removed_udp))
    same_frame = [lt.exists and frame_name(t) in lt.sets for t, lt in zip(ruleset.tables, live)]
    # A hook chain deleted by hand: the table is reloaded in place (not updated), which restores it.
    intact = [same and FRAME_CHAINS <= lt.chains for same, lt in zip(same_frame, live)]
    if all(intact):
        updates = [table_update(t, lt) for t, lt in zip(ruleset.tables, live)]
        changed = [u for u in updates if not u.empty]
        if not changed:
            return Transaction("", "unchanged", "no changes", removed)
        summary = "; ".join(f"{u.family.value}: {u.summary}" for u in changed)
        return Transaction(render_update(changed), "update", summary, removed)
    # Otherwise load everything. Tables of another frame are deleted first (a flush cannot
    # change a set's type or a hook chain's priority); tables of the same frame are reloaded in
    # place, which keeps their affinity state, and lose their stale chains and sets at the end.
    head, tail = "", ""
    created, replaced, reloaded = [], [], []
    for t, lt, same, whole in zip(ruleset.tables, live, same_frame, intact):
        name = f"{t.family.value} {t.name}"
        if not lt.exists:
            created.append(name)
        elif not same:
            head += f"delete table {name}\n"
            replaced.append(name)
        else:
            if not whole:
                reloaded.append(name)
            u = table_update(t, lt)
            tail += "".join(f"delete chain {name} {n}\n" for n in u.removed_chains)
            tail += "".join(f"delete set {name} {n}\n" for n in u.removed_sets)
    summary = ", ".join(
        x for x in (
            f"created {' and '.join(created)}" if created else "",
            f"replaced {' and '.join(replaced)} (new layout: session affinity state reset)" if replaced else "",
            f"reloaded {' and '.join(reloaded)} (a hook chain was missing)" if reloaded else "",
        ) if x
    )
    return Transaction(head + full_text + tail, "full", summary or "full reload", removed)
