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
from typing import Any, Callable, Iterable

from ..load import Origin, RawObject
from ..model import Endpoints, EndpointSlice, Node, Pod, Service, ServiceCIDR
from ..options import NodePortRange
from ..problems import InvalidInput, Problem
from .across import Held, check_across, held_values
from .endpoints import check_endpoints, check_slice
from .node import check_node
from .pod import check_pod
from .report import Entry
from .service import check_service
from .servicecidr import check_service_cidr
from .typing import typed

__all__ = ["Entry", "Held", "Inventory", "NodePortRange", "SERVICE_NAME_LABEL", "check_object", "held_values", "validate"]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

_RULES: dict[type, Callable[..., None]] = {
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


def check_object(
    item: RawObject, problems: list[Problem], skipped: list[tuple[str, Origin]], node_ports: NodePortRange = NodePortRange()
) -> Entry[Any] | None:
    """Type-check and validate one object on its own (what the API server checks before it looks
    at other objects): the Entry if it is valid, else None with its problems added to
    ``problems``; an object of a kind svcctl does not use is added to ``skipped``."""
    report = typed(item, problems, skipped)
    if report is None:
        return None
    obj = report.entry.obj
    _RULES[type(obj)](obj, report, node_ports)
    return report.entry if report.clean else None


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
        entry = check_object(item, problems, inventory.skipped, node_ports)
        if entry is not None:
            buckets[type(entry.obj)].append(entry)
    check_across(inventory, problems)
    if problems:
        raise InvalidInput(problems)
    return inventory
