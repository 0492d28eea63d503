"""A diff as a reader thinks of a change: per Service port, what is different (endpoints,
addresses, node ports, policy), then the rules with the hashes taken out of chain and set names.

Per-port names carry a hash of their content (svcctl.nftables.names), so one endpoint replaced
in one Service renames its chains and every element pointing at them: a plain diff shows that
noise around the one real line. Both sides here are ``nft list table`` listings (the live one,
and the one the plan predicts), read the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .frame import AFFINITY, PORT_CHAIN_KINDS, SERVICE_IPS, SERVICE_NODEPORTS
from .listing import normalize, unified_diff

_KINDS = "|".join((*PORT_CHAIN_KINDS, AFFINITY))
_HASHED = re.compile(rf"\b({_KINDS})-[A-Z2-7]{{8}}-")
_CHAIN = re.compile(rf"^\tchain ({'|'.join(PORT_CHAIN_KINDS)})-[A-Z2-7]{{8}}-(\S+) \{{$")
_MAP = re.compile(r"^\tmap (\S+) \{$")
_ELEMENT = re.compile(rf"^\t\t\t(.+) : goto ({'|'.join(PORT_CHAIN_KINDS)})-[A-Z2-7]{{8}}-(\S+)$")
_TARGET = re.compile(r"dnat to (\S+)$")
_SPREAD = re.compile(r"dnat ip6? to numgen random mod \d+ map \{ (.*) \}$")
_ELEMENT_DATA = re.compile(r"\d+ : (\S+) \. (\d+)")
_TIMEOUT = re.compile(r" timeout (\S+) \}")


def strip_hashes(listing: str) -> str:
    """Per-port names without their hash: ``svc-KUWXTKG5-default/web/tcp/80`` -> ``svc-default/web/tcp/80``."""
    return _HASHED.sub(r"\1-", listing)


@dataclass
class PortState:
    endpoints: list[str] = field(default_factory=list)  # DNAT targets of the all-endpoints chain
    local: list[str] = field(default_factory=list)  # of the local-endpoints chain
    addresses: list[str] = field(default_factory=list)  # service-ips keys leading to the port's chains
    node_ports: list[str] = field(default_factory=list)
    affinity: str = ""  # the timeout, when ClientIP affinity is on
    external: list[str] = field(default_factory=list)  # the ext- chain's rules, hashes stripped


def _label(ident: str) -> str:
    namespace, name, proto, port = ident.split("/")
    return f"{namespace}/{name}:{port}/{proto}"


def port_states(listing: str) -> dict[str, PortState]:
    """What each Service port has in one normalized listing, by port (``ns/name/proto/port``)."""
    states: dict[str, PortState] = {}
    kind = ident = block = ""
    for line in listing.splitlines():
        chain = _CHAIN.match(line)
        if chain:
            kind, ident = chain.groups()
            states.setdefault(ident, PortState())
            continue
        mapped = _MAP.match(line)
        if mapped or line.startswith("\tset ") or line.startswith("\tchain "):
            kind, ident, block = "", "", mapped[1] if mapped else ""
            continue
        if block in (SERVICE_IPS.name, SERVICE_NODEPORTS.name):
            element = _ELEMENT.match(line)
            if element:
                key, _, owner = element.groups()
                state = states.setdefault(owner, PortState())
                (state.addresses if block == SERVICE_IPS.name else state.node_ports).append(key.replace(" . ", " "))
            continue
        if not ident or not line.startswith("\t\t") or line.strip().startswith(("comment ", "}")):
            continue
        state = states[ident]
        if kind == "ext":
            state.external.append(strip_hashes(line.strip()))
            continue
        found = state.local if kind == "local" else state.endpoints
        spread = _SPREAD.search(line)
        targets = [f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in _ELEMENT_DATA.findall(spread[1])] if spread else []
        target = _TARGET.search(line)
        for t in targets or ([target[1]] if target else []):
            if t not in found:
                found.append(t)
        timeout = _TIMEOUT.search(line)
        if timeout:
            state.affinity = timeout[1]
    return states


def _set_change(what: str, old: list[str], new: list[str]) -> list[str]:
    gone = [x for x in old if x not in new]
    came = [x for x in new if x not in old]
    if len(gone) == len(came) == 1:
        return [f"{what} {gone[0]} -> {came[0]}"]
    return [f"{what} {sign}{x}" for sign, items in (("-", gone), ("+", came)) for x in items]


def summary(live: str, planned: str) -> list[str]:
    """One line per change of a Service port, ``ns/name:port/proto: what``, in port order."""
    before, after = port_states(live), port_states(planned)
    lines = []
    for ident in sorted(before.keys() | after.keys()):
        label = _label(ident)
        old, new = before.get(ident), after.get(ident)
        if old is None or new is None:
            state = new or old
            assert state is not None
            count = len(set(state.endpoints) | set(state.local))
            verb = "added" if old is None else "removed"
            lines.append(f"{label}: {verb} ({', '.join(state.addresses) or 'no address'}; {count} endpoint(s))")
            continue
        changes = [
            *_set_change("endpoint", old.endpoints, new.endpoints),
            *_set_change("local endpoint", old.local, new.local),
            *_set_change("address", old.addresses, new.addresses),
            *_set_change("node port", old.node_ports, new.node_ports),
        ]
        if old.affinity != new.affinity:
            changes.append(f"session affinity {old.affinity or 'off'} -> {new.affinity or 'off'}")
        if old.external != new.external:
            changes.append("external traffic route changed")
        lines += [f"{label}: {c}" for c in changes]
    return lines


def diff_text(live: list[str], planned: list[str], raw: bool = False) -> str:
    """``nft list table`` listings, table by table, live and planned -> what a user reads: ""
    when they are the same; else the summary, then the unified diff of the listings normalized
    with per-port hashes taken out (with ``raw``: the unified diff of the listings as they are,
    normalized only)."""

    def normalized(tables: list[str], hashes: bool = True) -> str:
        return "".join(normalize(t if hashes else strip_hashes(t)) for t in tables)

    before, after = normalized(live), normalized(planned)
    if before == after:
        return ""
    if raw:
        return unified_diff(before, after)
    head = "".join(f"# {line}\n" for line in summary(before, after))
    return head + unified_diff(normalized(live, hashes=False), normalized(planned, hashes=False))
