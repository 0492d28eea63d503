"""A diff as a reader thinks of a change, for every back end: per Service port, what is
different (endpoints, addresses, node ports, session affinity, the external route). Each back end
reads a ``PortState`` per port out of its own listings; the lines are the same for all of them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PortState:
    """What a Service port has in one listing (strings as the back end lists them)."""

    endpoints: list[str] = field(default_factory=list)  # of the all-endpoints cascade, ip:port
    local: list[str] = field(default_factory=list)  # of the local-endpoints cascade
    addresses: list[str] = field(default_factory=list)  # "ip proto port" leading to the port
    node_ports: list[str] = field(default_factory=list)  # "proto port"
    affinity: str = ""  # the timeout, when ClientIP affinity is on
    external: list[str] = field(default_factory=list)  # the external route's rules


def label(ident: str) -> str:
    """``ns/name/proto/port`` (svcctl.plan.PortRef.ident) -> ``ns/name:port/proto``."""
    namespace, name, proto, port = ident.split("/")
    return f"{namespace}/{name}:{port}/{proto}"


def _set_change(what: str, old: list[str], new: list[str]) -> list[str]:
    gone = [x for x in old if x not in new]
    came = [x for x in new if x not in old]
    if len(gone) == len(came) == 1:
        return [f"{what} {gone[0]} -> {came[0]}"]
    return [f"{what} {sign}{x}" for sign, items in (("-", gone), ("+", came)) for x in items]


def port_changes(before: dict[str, PortState], after: dict[str, PortState]) -> list[str]:
    """One line per change of a Service port, ``ns/name:port/proto: what``, in port order.
    ``before``/``after``: the ports' states (by PortRef.ident), live and planned."""
    lines = []
    for ident in sorted(before.keys() | after.keys()):
        name = label(ident)
        old, new = before.get(ident), after.get(ident)
        if old is None or new is None:
            state = new or old
            assert state is not None
            count = len(set(state.endpoints) | set(state.local))
            verb = "added" if old is None else "removed"
            lines.append(f"{name}: {verb} ({', '.join(state.addresses) or 'no address'}; {count} endpoint(s))")
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
        lines += [f"{name}: {c}" for c in changes]
    return lines
