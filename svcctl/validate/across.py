"""Rules across objects: what no single object shows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .. import formats
from ..model import Service
from ..problems import Path, Problem, show_value
from .report import Entry

if TYPE_CHECKING:
    from . import Inventory


def check_across(inventory: Inventory, problems: list[Problem]) -> None:
    """What no single object shows: an object twice, a cluster IP or a node port held twice."""
    for entries in (inventory.services, inventory.endpoints, inventory.slices, inventory.pods, inventory.service_cidrs, inventory.nodes):
        first: dict[str, Entry[Any]] = {}
        for entry in entries:
            ref = entry.obj.ref
            if ref in first:
                where = first[ref].origin
                problems.append(
                    Problem(
                        f"Duplicate value: {entry.obj.kind} {ref} is already defined at {where.source.name}:{where.line}",
                        ("metadata", "name"), entry.origin, entry.obj.kind, ref,
                    )
                )
            else:
                first[ref] = entry
    # One owner per cluster IP; the API server's node port allocator holds a port number for
    # one Service, whatever the protocol (one Service may use it for TCP and UDP).
    owner: dict[tuple[str, str | int], str] = {}
    for entry in inventory.services:
        svc = entry.obj
        for held in held_values(svc):
            holder = owner.setdefault(held.key, svc.ref)
            if holder != svc.ref:
                problems.append(Problem(held.taken_by(holder), held.path, entry.origin, svc.kind, svc.ref))


class Held(NamedTuple):
    """A value a Service holds that no other Service may: a cluster IP or a node port number."""

    key: tuple[str, str | int]  # ("ip", canonical text) or ("nodePort", number)
    path: Path
    shown: str

    def taken_by(self, owner: str) -> str:
        what = "IP" if self.key[0] == "ip" else "port"
        return f"Invalid value: {self.shown}: provided {what} is already allocated (to Service {owner})"


def held_values(svc: Service) -> list[Held]:
    """The cluster IPs and node ports a Service holds, each once, with the field that sets it."""
    out: dict[tuple[str, str | int], Held] = {}
    key: tuple[str, str | int]
    for i, ip in enumerate(svc.spec.cluster_ips):
        if ip != "None":
            key = ("ip", formats.canonical_ip(ip))
            out.setdefault(key, Held(key, ("spec", "clusterIPs", i), show_value(ip)))
    for i, port in enumerate(svc.spec.ports):
        if port.node_port:
            key = ("nodePort", port.node_port)
            out.setdefault(key, Held(key, ("spec", "ports", i, "nodePort"), str(port.node_port)))
    return list(out.values())
