"""Turn raw manifests into validated, typed objects, as the API server would accept them.

Every problem in every object is collected before anything fails, so a user sees the whole list
at once. The rules follow the API server's validation (pkg/apis/core/validation and
pkg/apis/discovery/validation, pkg/apis/networking/validation); messages are worded as it words
them. One module per kind of object (service, endpoints, pod, servicecidr, node), one for what
every kind shares (metadata), one for the typed step before the rules (typing) and one for the
rules across objects (across).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..load import Origin, RawObject
from ..model import Endpoints, EndpointSlice, Node, Pod, Service, ServiceCIDR
from ..options import NodePortRange
from ..problems import InvalidInput, Problem
from .across import check_across
from .endpoints import check_endpoints, check_slice
from .node import check_node
from .pod import check_pod
from .report import Entry
from .service import check_service
from .servicecidr import check_service_cidr
from .typing import typed

__all__ = ["Entry", "Inventory", "NodePortRange", "SERVICE_NAME_LABEL", "validate"]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

_RULES = {
    Service: check_service,
    Endpoints: check_endpoints,
    EndpointSlice: check_slice,
    Pod: check_pod,
    ServiceCIDR: check_service_cidr,
    Node: check_node,
}


@dataclass
class Inventory:
    """Every object of the kinds svcctl uses, validated; and what was skipped."""

    services: list[Entry[Service]] = field(default_factory=list)
    endpoints: list[Entry[Endpoints]] = field(default_factory=list)
    slices: list[Entry[EndpointSlice]] = field(default_factory=list)
    pods: list[Entry[Pod]] = field(default_factory=list)
    service_cidrs: list[Entry[ServiceCIDR]] = field(default_factory=list)
    nodes: list[Entry[Node]] = field(default_factory=list)
    skipped: list[tuple[str, Origin]] = field(default_factory=list)  # "apiVersion/kind name", origin


def validate(raw: Iterable[RawObject], node_ports: NodePortRange = NodePortRange()) -> Inventory:
    """Type-check and validate every object. Raises InvalidInput with every problem found."""
    inventory = Inventory()
    problems: list[Problem] = []
    buckets: dict[type, list[Any]] = {
        Service: inventory.services,
        Endpoints: inventory.endpoints,
        EndpointSlice: inventory.slices,
        Pod: inventory.pods,
        ServiceCIDR: inventory.service_cidrs,
        Node: inventory.nodes,
    }
    for item in raw:
        report = typed(item, problems, inventory.skipped)
        if report is None:
            continue
        obj = report.entry.obj
        _RULES[type(obj)](obj, report, node_ports)
        if report.clean:
            buckets[type(obj)].append(report.entry)
    check_across(inventory, problems)
    if problems:
        raise InvalidInput(problems)
    return inventory
