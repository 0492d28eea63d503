"""Rules across objects: what no single object shows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import formats
from ..problems import Problem, show_value
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
    ip_owner: dict[str, str] = {}
    # The API server's node port allocator holds a port number for one Service, whatever the
    # protocol; one Service may use the same number for TCP and UDP.
    port_owner: dict[int, str] = {}
    for entry in inventory.services:
        svc = entry.obj
        for i, ip in enumerate(svc.spec.cluster_ips):
            if ip == "None":
                continue
            canonical = formats.canonical_ip(ip)
            if canonical in ip_owner and ip_owner[canonical] != svc.ref:
                problems.append(
                    Problem(
                        f"Invalid value: {show_value(ip)}: provided IP is already allocated (to Service {ip_owner[canonical]})",
                        ("spec", "clusterIPs", i), entry.origin, svc.kind, svc.ref,
                    )
                )
            ip_owner.setdefault(canonical, svc.ref)
        for i, port in enumerate(svc.spec.ports):
            if not port.node_port:
                continue
            owner = port_owner.setdefault(port.node_port, svc.ref)
            if owner != svc.ref:
                problems.append(
                    Problem(
                        f"Invalid value: {port.node_port}: provided port is already allocated (to Service {owner})",
                        ("spec", "ports", i, "nodePort"), entry.origin, svc.kind, svc.ref,
                    )
                )
