"""Endpoints and EndpointSlices: addresses, ports and the API server's size limits."""

from __future__ import annotations

from .. import formats
from ..model import AddressType, Endpoints, EndpointSlice
from ..options import NodePortRange
from ..problems import Path
from .metadata import NAME_RULE, check_meta
from .report import Reporter
from .service import check_port_names


def _check_endpoint_address(ip: str, path: Path, report: Reporter, family: int | None = None) -> None:
    errs = formats.non_special_ip(ip)
    if not errs and family is not None and formats.ip_version(ip) != family:
        errs = [f"must be an IPv{family} address"]
    if errs:
        report.invalid(path, ip, errs)


def check_endpoints(ep: Endpoints, report: Reporter, _: NodePortRange) -> None:
    check_meta(ep.metadata, report, NAME_RULE[Endpoints])
    for s, subset in enumerate(ep.subsets):
        for field_name, addresses in (("addresses", subset.addresses), ("notReadyAddresses", subset.not_ready_addresses)):
            for a, address in enumerate(addresses):
                path: Path = ("subsets", s, field_name, a)
                _check_endpoint_address(address.ip, (*path, "ip"), report)
                if address.hostname and (errs := formats.dns1123_label(address.hostname)):
                    report.invalid((*path, "hostname"), address.hostname, errs)
                if address.node_name and (errs := formats.dns1123_subdomain(address.node_name)):
                    report.invalid((*path, "nodeName"), address.node_name, errs)
        check_port_names([p.name for p in subset.ports], ("subsets", s, "ports"), report, required=len(subset.ports) > 1)
        for p, port in enumerate(subset.ports):
            if errs := formats.port_number(port.port):
                report.invalid(("subsets", s, "ports", p, "port"), port.port, errs)


_SLICE_FAMILY = {AddressType.IPV4: 4, AddressType.IPV6: 6}
MAX_SLICE_ENDPOINTS = 1000
MAX_SLICE_PORTS = 100
MAX_ENDPOINT_ADDRESSES = 100


def check_slice(es: EndpointSlice, report: Reporter, _: NodePortRange) -> None:
    check_meta(es.metadata, report, NAME_RULE[EndpointSlice])
    if len(es.endpoints) > MAX_SLICE_ENDPOINTS:
        report(("endpoints",), f"Too many: {len(es.endpoints)}: must have at most {MAX_SLICE_ENDPOINTS} items")
    family = _SLICE_FAMILY.get(es.address_type)
    for e, endpoint in enumerate(es.endpoints):
        path: Path = ("endpoints", e)
        if not endpoint.addresses:
            report((*path, "addresses"), "Required value: must contain at least 1 address")
        elif len(endpoint.addresses) > MAX_ENDPOINT_ADDRESSES:
            report((*path, "addresses"), f"Too many: must have at most {MAX_ENDPOINT_ADDRESSES} items")
        for a, address in enumerate(endpoint.addresses):
            if family is None:
                if errs := formats.dns1123_subdomain(address):
                    report.invalid((*path, "addresses", a), address, errs)
            else:
                _check_endpoint_address(address, (*path, "addresses", a), report, family)
        if endpoint.node_name and (errs := formats.dns1123_subdomain(endpoint.node_name)):
            report.invalid((*path, "nodeName"), endpoint.node_name, errs)
        if endpoint.hostname and (errs := formats.dns1123_label(endpoint.hostname)):
            report.invalid((*path, "hostname"), endpoint.hostname, errs)
    if len(es.ports) > MAX_SLICE_PORTS:
        report(("ports",), f"Too many: {len(es.ports)}: must have at most {MAX_SLICE_PORTS} items")
    # An EndpointSlice's port names are optional, but two unnamed ports are duplicates too.
    check_port_names([p.name for p in es.ports], ("ports",), report, required=False, empty_is_a_name=True)
    for p, port in enumerate(es.ports):
        if port.port is not None and (errs := formats.port_number(port.port)):
            report.invalid(("ports", p, "port"), port.port, errs)
