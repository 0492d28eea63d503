"""Endpoints and EndpointSlices: addresses, ports, topology hints and the API server's size limits
(pkg/apis/core/validation for Endpoints, pkg/apis/discovery/validation for EndpointSlices)."""

from __future__ import annotations

import functools
from typing import Callable, Sequence

from .. import formats
from ..bulk import Endpoint
from ..model import AddressType, EndpointPort, Endpoints, EndpointSlice, EndpointSlicePort
from ..options import NodePortRange
from ..problems import Path, show_value
from .metadata import check_meta
from .report import Reporter
from .service import check_port_names

_SLICE_FAMILY = {AddressType.IPV4: 4, AddressType.IPV6: 6}
MAX_SLICE_ENDPOINTS = 1000
MAX_SLICE_PORTS = 20000  # maxPorts in the validation code (the API reference still says 100)
MAX_ENDPOINT_ADDRESSES = 100
MAX_HINTS = 8  # maxZoneHints and maxNodeHints


def check_endpoints(ep: Endpoints, report: Reporter, _: NodePortRange) -> None:
    check_meta(ep.metadata, report, Endpoints)
    for s, subset in enumerate(ep.subsets):
        if not subset.addresses and not subset.not_ready_addresses:
            report(("subsets", s), "Required value: must specify `addresses` or `notReadyAddresses`")
        for field_name, addresses in (("addresses", subset.addresses), ("notReadyAddresses", subset.not_ready_addresses)):
            for a, address in enumerate(addresses):
                path: Path = ("subsets", s, field_name, a)
                _check_endpoint_address(address.ip, (*path, "ip"), report)
                _check_names(address.hostname, address.node_name, path, report)
        check_port_names([p.name for p in subset.ports], ("subsets", s, "ports"), report, required=len(subset.ports) > 1)
        _check_ports(subset.ports, ("subsets", s, "ports"), report)


def check_slice(es: EndpointSlice, report: Reporter, _: NodePortRange) -> None:
    check_meta(es.metadata, report, EndpointSlice)
    # Past a limit the API server reports the number alone and checks none of the items.
    if len(es.endpoints) > MAX_SLICE_ENDPOINTS:
        report(("endpoints",), _too_many(len(es.endpoints), MAX_SLICE_ENDPOINTS))
    else:
        _check_slice_endpoints(es.endpoints, _SLICE_FAMILY.get(es.address_type), report)
    if len(es.ports) > MAX_SLICE_PORTS:
        report(("ports",), _too_many(len(es.ports), MAX_SLICE_PORTS))
    else:
        # An EndpointSlice's port names are optional, but two unnamed ports are duplicates too.
        check_port_names([p.name for p in es.ports], ("ports",), report, required=False, empty_is_a_name=True)
        _check_ports(es.ports, ("ports",), report)


def _check_slice_endpoints(endpoints: tuple[Endpoint, ...], family: int | None, report: Reporter) -> None:
    check = formats.dns1123_subdomain if family is None else functools.partial(_address_errors, family=family)
    for e, endpoint in enumerate(endpoints):  # 100,000s of them: one loop, few calls, paths made for problems only
        addresses = endpoint.addresses
        if not addresses:
            report(("endpoints", e, "addresses"), "Required value: must contain at least 1 address")
        elif len(addresses) > MAX_ENDPOINT_ADDRESSES:
            report(("endpoints", e, "addresses"), _too_many(len(addresses), MAX_ENDPOINT_ADDRESSES))
        for a, address in enumerate(addresses):
            if errs := check(address):
                report.invalid(("endpoints", e, "addresses", a), address, errs)
        if endpoint.hostname or endpoint.node_name:
            _check_names(endpoint.hostname, endpoint.node_name, ("endpoints", e), report)
        if endpoint.zone_hints or endpoint.node_hints:
            _check_hints(endpoint, ("endpoints", e, "hints"), report)


# A zone hint names a zone as the zone label does (a label value: the empty name is one); a node
# hint names a node (a DNS subdomain: never empty).
_HINTS: tuple[tuple[str, str, Callable[[str], Sequence[str]]], ...] = (
    ("forZones", "zone_hints", formats.label_value),
    ("forNodes", "node_hints", formats.dns1123_subdomain),
)


def _check_hints(endpoint: Endpoint, path: Path, report: Reporter) -> None:
    for field_name, attribute, name_check in _HINTS:
        names: tuple[str, ...] = getattr(endpoint, attribute)
        where = (*path, field_name)
        if len(names) > MAX_HINTS:
            report(where, _too_many(len(names), MAX_HINTS))
            return  # validateHints stops here, also before the node hints
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                report((*where, i, "name"), f"Duplicate value: {show_value(name)}")
            seen.add(name)
            if errs := name_check(name):
                report.invalid((*where, i, "name"), name, errs)


def _check_ports(ports: Sequence[EndpointPort | EndpointSlicePort], path: Path, report: Reporter) -> None:
    for p, port in enumerate(ports):
        if port.port is not None and (errs := formats.port_number(port.port)):
            report.invalid((*path, p, "port"), port.port, errs)
        if port.app_protocol is not None and (errs := formats.qualified_name(port.app_protocol)):
            report.invalid((*path, p, "appProtocol"), port.app_protocol, errs)


def _check_endpoint_address(ip: str, path: Path, report: Reporter, family: int | None = None) -> None:
    if errs := _address_errors(ip, family):
        report.invalid(path, ip, errs)


def _address_errors(ip: str, family: int | None = None) -> Sequence[str]:
    errs = formats.non_special_ip(ip)
    if not errs and family is not None and formats.ip_version(ip) != family:
        errs = [f"must be an IPv{family} address"]
    return errs


def _check_names(hostname: str, node_name: str, path: Path, report: Reporter) -> None:
    """An endpoint's hostname (a DNS label: it becomes one in DNS) and its node's name."""
    if hostname and (errs := formats.dns1123_label(hostname)):
        report.invalid((*path, "hostname"), hostname, errs)
    if node_name and (errs := formats.dns1123_subdomain(node_name)):
        report.invalid((*path, "nodeName"), node_name, errs)


def _too_many(count: int, limit: int) -> str:
    return f"Too many: {count}: must have at most {limit} items"
