"""Reading svcctl's tables in the kernel: which tables exist and are svcctl's, and what an apply
needs to know of them (chain and set names, the static sets' elements). Only cheap terse
listings: the rules themselves are never read (a chain's name says what its rules are).

Everything reads through ``Reader.query`` (the JSON objects of one ``nft list`` command), which
svcctl.nftables.nft.Nft implements against the kernel and tests/fake_kernel.py against a
recorded ``nft -j list ruleset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..kernel import KernelError
from .frame import MARKER_PREFIX, UDP_ENDPOINTS
from .objects import Family, Ruleset, Table

Key = tuple[str, ...]
VerdictKey = tuple[str, str]


class Reader(Protocol):
    def query(self, command: str, terse: bool = False) -> list[dict[str, Any]]: ...


@dataclass
class LiveTable:
    """What svcctl needs to know of one of its tables in the kernel."""

    family: Family
    name: str
    exists: bool = False
    chains: set[str] = field(default_factory=set)
    sets: set[str] = field(default_factory=set)
    elements: dict[str, dict[Key, VerdictKey | None]] = field(default_factory=dict)


TableKey = tuple[str, str]  # (family, table name)


@dataclass
class Names:
    """The names of every table's chains, sets and maps, from three terse listings (cheap: no
    rules, no elements). Not ``list tables``: nft 1.0.6 fills its whole cache for it, rules
    included (1.5 s for a 10,000-Service table), while terse chain and set listings take
    milliseconds."""

    chains: dict[TableKey, set[str]] = field(default_factory=dict)
    sets: dict[TableKey, set[str]] = field(default_factory=dict)
    maps: dict[TableKey, set[str]] = field(default_factory=dict)

    def present(self) -> set[TableKey]:
        """Every table that has a chain or a set (svcctl's always have both). A table holding
        neither is not seen here: an apply creates its tables with ``create table``, which the
        kernel refuses for a table that exists."""
        return {*self.chains, *self.sets, *self.maps}

    def owned(self) -> set[TableKey]:
        """The tables svcctl made: those holding a ``frame-*`` marker set. A table of the same
        name without one belongs to someone else and is never changed or deleted."""
        return {table for table, names in self.sets.items() if any(n.startswith(MARKER_PREFIX) for n in names)}


def names(nft: Reader) -> Names:
    found = Names()
    for what, into in (("chains", found.chains), ("sets", found.sets), ("maps", found.maps)):
        for obj in nft.query(f"list {what}", terse=True):
            (body,) = obj.values()
            into.setdefault((body["family"], body["table"]), set()).add(body["name"])
    return found


def normalize_key(value: Any) -> Key:
    """A set element as the JSON listing gives it -> the plan's key: a tuple of strings."""
    if isinstance(value, dict):
        if "concat" in value:
            return tuple(x for part in value["concat"] for x in normalize_key(part))
        if "prefix" in value:
            return (f"{value['prefix']['addr']}/{value['prefix']['len']}",)
        if "range" in value:
            low, high = value["range"]
            return (f"{low}-{high}",)
        if "elem" in value:
            return normalize_key(value["elem"]["val"])
    return (str(value),)


def _verdict(value: Any) -> VerdictKey:
    (kind, arg), = value.items()
    return (kind, arg["target"] if isinstance(arg, dict) else "")


def read_live(nft: Reader, ruleset: Ruleset, frames: dict[str, str]) -> list[LiveTable]:
    """The live state of svcctl's tables. ``frames``: the planned frame marker of each table
    (by scope): a table of another frame is replaced whole, so of its elements only the UDP
    endpoints are read (for the conntrack cleanup after the apply). Raises KernelError for a
    table of svcctl's name that svcctl did not make."""
    listed = names(nft)
    tables, ours = listed.present(), listed.owned()
    out = []
    for t in ruleset.tables:
        key = (t.family.value, t.name)
        live = LiveTable(t.family, t.name, exists=key in tables)
        out.append(live)
        if not live.exists:
            continue
        if key not in ours:
            raise foreign(t)
        live.chains = listed.chains.get(key, set())
        live.sets = listed.sets.get(key, set()) | listed.maps.get(key, set())
        wanted = t.static_sets if frames[t.scope] in live.sets else [s for s in t.static_sets if s.name == UDP_ENDPOINTS.name]
        for s in wanted:
            kind = "map" if s.is_map else "set"
            found = nft.query(f"list {kind} {t.scope} {s.name}") if s.name in live.sets else []
            elements: dict[Key, VerdictKey | None] = {}
            for obj in found:
                for elem in obj[kind].get("elem", []):
                    if s.is_map:
                        elements[normalize_key(elem[0])] = _verdict(elem[1])
                    else:
                        elements[normalize_key(elem)] = None
            live.elements[s.name] = elements
    return out


def foreign(t: Table) -> KernelError:
    return KernelError(
        f"table {t.scope} exists and was not made by svcctl (it has no {MARKER_PREFIX}* marker set); "
        "svcctl leaves it alone: choose another --table"
    )
