"""A diff as a reader thinks of a change: per Service port, what is different (endpoints,
addresses, node ports, policy), then the rules with the hashes taken out of chain and set names.

Per-port names carry a hash of their content (svcctl.nftables.names), so one endpoint replaced
in one Service renames its chains and every element pointing at them: a plain diff shows that
noise around the one real line. Both sides here are ``nft list table`` listings (the live one,
and the one the plan predicts), read the same way.
"""

from __future__ import annotations

import re

from ..changes import PortState, port_changes
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


def summary(live: str, planned: str) -> list[str]:
    """One line per change of a Service port, ``ns/name:port/proto: what``, in port order."""
    return port_changes(port_states(live), port_states(planned))


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
