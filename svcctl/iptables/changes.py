"""A diff as a reader thinks of a change (svcctl.changes), from svcctl's iptables chains: every
rule made for a Service port names it in its comment (``ns/name:port/proto what``), so the live
rules say which port they belong to as well as the planned ones do."""

from __future__ import annotations

import re
from typing import Iterable

from ..changes import PortState
from .frame import EXT, NODEPORTS, PREFIX, SERVICES, SVC, SVL, TableName
from .state import TableState

_COMMENT = re.compile(r'--comment "([^"/ ]+)/([^": ]+):([^"/ ]+)/(\w+)(?: ([^"]*))?"')
_DESTINATION = re.compile(r" -d ([^ /]+)")
_PROTOCOL = re.compile(r" -p (\w+)")
_DPORT = re.compile(r" --dport (\d+)")
_SECONDS = re.compile(r" --rcheck --seconds (\d+)")


def owners(states: Iterable[TableState]) -> dict[str, str]:
    """Chain -> the Service port (PortRef.ident) its rules name: for the live chains, which the
    plan may no longer have."""
    found = {}
    for state in states:
        for chain, lines in state.chains.items():
            for line in lines:
                comment = _COMMENT.search(line)
                if comment:
                    namespace, name, port, proto, _ = comment.groups()
                    found[chain] = f"{namespace}/{name}/{proto}/{port}"
                    break
    return found


def port_states(tables: dict[TableName, list[TableState]]) -> dict[str, PortState]:
    """What each Service port has in svcctl's nat chains (of every family), by PortRef.ident."""
    states: dict[str, PortState] = {}
    for state in tables.get(TableName.NAT, []):
        for chain, lines in state.chains.items():
            kind = chain[len(PREFIX):].split("-", 1)[0]
            for line in lines:
                comment = _COMMENT.search(line)
                if comment is None:  # the frame's rules
                    continue
                namespace, name, port, proto, what = comment.groups()
                owner = states.setdefault(f"{namespace}/{name}/{proto}/{port}", PortState())
                if chain == SERVICES:
                    owner.addresses.append(f"{_DESTINATION.search(line)[1]} {_PROTOCOL.search(line)[1]} {_DPORT.search(line)[1]}")  # type: ignore[index]
                elif chain == NODEPORTS:
                    owner.node_ports.append(f"{_PROTOCOL.search(line)[1]} {_DPORT.search(line)[1]}")  # type: ignore[index]
                elif kind in (SVC, SVL) and what and what.startswith("-> "):
                    found = owner.local if kind == SVL else owner.endpoints
                    if what[3:] not in found:
                        found.append(what[3:])
                    seconds = _SECONDS.search(line)
                    if seconds:
                        owner.affinity = f"{seconds[1]}s"
                elif kind == EXT:
                    owner.external.append(line.split(" ", 2)[2])
    return states
