"""Give Services what the API server would allocate: cluster IPs and node ports.

Allocation is deterministic: a value is derived from a hash of the Service's namespace, name and
port, then probed upwards past values already taken. Values that Services in the input hold
explicitly are reserved first, so an allocated value never collides with one a user wrote, and
Services are processed in a fixed order, so the same input always gives the same values.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from .formats import canonical_ip, ip_version
from .model import IPFamily, IPFamilyPolicy, Service, ServiceType
from .options import Network, Options
from .problems import InvalidInput, Problem
from .validate import Entry, Inventory


@dataclass(frozen=True)
class Allocation:
    """What one Service ends up with."""

    cluster_ips: tuple[str, ...]  # canonical text, primary family first; () for headless/ExternalName
    node_ports: tuple[int, ...]  # per spec.ports index; 0 where the port has none


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def allocate(inventory: Inventory, options: Options) -> dict[str, Allocation]:
    """Allocation per Service ref (namespace/name). Raises InvalidInput when a Service asks for an
    IP family the service CIDRs do not cover, or a range is full."""
    result, problems = allocate_all(inventory.services, options)
    if problems:
        raise InvalidInput(problems)
    return result


def explicit(entry: Entry[Service], options: Options) -> Allocation | None:
    """A Service's allocation when everything in it comes from its spec, else None: then it does
    not depend on the other Services, and the others do not depend on it beyond its own values."""
    found, problems = allocate_all([entry], options)
    if problems:
        return None
    spec, alloc = entry.obj.spec, found[entry.obj.ref]
    written = {canonical_ip(ip) for ip in spec.cluster_ips if ip != "None"}
    if not set(alloc.cluster_ips) <= written:
        return None
    if any(number != port.node_port for number, port in zip(alloc.node_ports, spec.ports)):
        return None
    return alloc


def allocate_all(entries: list[Entry[Service]], options: Options) -> tuple[dict[str, Allocation], list[Problem]]:
    """Allocation per Service ref, and the problems of the Services that could not get one (those
    get what could be allocated)."""
    services = sorted(entries, key=lambda e: e.obj.ref)
    taken_ips = {canonical_ip(ip) for e in services for ip in e.obj.spec.cluster_ips if ip != "None"}
    taken_ports = {p.node_port for e in services for p in e.obj.spec.ports if p.node_port}
    cidrs = {IPFamily.IPV4 if n.version == 4 else IPFamily.IPV6: n for n in options.service_cidrs}
    primary = IPFamily.IPV4 if options.service_cidrs[0].version == 4 else IPFamily.IPV6
    problems: list[Problem] = []
    result: dict[str, Allocation] = {}
    for entry in services:
        svc = entry.obj
        ips = _cluster_ips(entry, cidrs, primary, taken_ips, problems)
        ports = _node_ports(svc, options, taken_ports, entry, problems)
        result[svc.ref] = Allocation(ips, ports)
    return result, problems


def _families(svc: Service, cidrs: dict[IPFamily, Network], primary: IPFamily) -> list[IPFamily]:
    """The IP families a Service gets, as the API server decides them from ipFamilies,
    ipFamilyPolicy, clusterIPs and what the cluster is configured for."""
    spec = svc.spec
    given = [IPFamily.IPV6 if ":" in ip else IPFamily.IPV4 for ip in spec.cluster_ips]
    # ipFamilies, completed from clusterIPs, else the cluster's primary family. Every family
    # asked for this way must be configured, whatever the policy (initIPFamilyFields).
    families = list(spec.ip_families) + given[len(spec.ip_families):] or [primary]
    policy = spec.ip_family_policy or (
        IPFamilyPolicy.REQUIRE_DUAL_STACK if len(families) == 2 else IPFamilyPolicy.SINGLE_STACK
    )
    if policy is IPFamilyPolicy.SINGLE_STACK:
        return families[:1]
    other = IPFamily.IPV6 if families[0] is IPFamily.IPV4 else IPFamily.IPV4
    # The second family is added when the cluster has it; RequireDualStack demands it (an
    # error below when the service CIDRs lack it), PreferDualStack goes without.
    if len(families) == 1 and (other in cidrs or policy is IPFamilyPolicy.REQUIRE_DUAL_STACK):
        families.append(other)
    return families


def _cluster_ips(
    entry: Entry[Service],
    cidrs: dict[IPFamily, Network],
    primary: IPFamily,
    taken: set[str],
    problems: list[Problem],
) -> tuple[str, ...]:
    svc = entry.obj
    if svc.spec.type is ServiceType.EXTERNAL_NAME or svc.spec.headless:
        return ()
    explicit = {ip_version(ip): canonical_ip(ip) for ip in svc.spec.cluster_ips}
    out: list[str] = []
    for family in _families(svc, cidrs, primary):
        version = 4 if family is IPFamily.IPV4 else 6
        if version in explicit:
            out.append(explicit[version])
            continue
        cidr = cidrs.get(family)
        if cidr is None:
            problems.append(
                Problem(
                    f"Invalid value: \"{family.value}\": the service CIDRs ({', '.join(map(str, cidrs.values()))}) "
                    f"have no {family.value} range; give one with --service-cidr",
                    ("spec", "ipFamilies"), entry.origin, svc.kind, svc.ref,
                )
            )
            continue
        ip = _probe_ip(cidr, _hash(svc.ref, family.value), taken)
        if ip is None:
            problems.append(
                Problem(f"Internal error: no free IP left in the service CIDR {cidr}", ("spec", "clusterIP"), entry.origin, svc.kind, svc.ref)
            )
            continue
        taken.add(ip)
        out.append(ip)
    return tuple(out)


def _probe_ip(cidr: Network, start: int, taken: set[str]) -> str | None:
    # Like the API server's allocator, never hand out the network address nor (IPv4) the broadcast one.
    usable = cidr.num_addresses - 2
    if usable <= 0:
        return None
    first = int(cidr.network_address) + 1
    for step in range(min(usable, 1 << 20)):
        ip = str(ipaddress.ip_address(first + (start + step) % usable))
        if ip not in taken:
            return ip
    return None


def _node_ports(
    svc: Service, options: Options, taken: set[int], entry: Entry[Service], problems: list[Problem]
) -> tuple[int, ...]:
    spec = svc.spec
    wants = spec.type is ServiceType.NODE_PORT or (
        spec.type is ServiceType.LOAD_BALANCER and spec.allocate_load_balancer_node_ports
    )
    rng = options.node_port_range
    size = rng.last - rng.first + 1
    # The API server gives all ports of one port number (TCP and UDP) one node port, and when
    # one of them asks for a node port, the others take it too (initNodePorts, findRequestedNodePort).
    by_port: dict[int, int] = {}
    if wants:
        for port in spec.ports:
            if port.node_port:
                by_port.setdefault(port.port, port.node_port)
    out: list[int] = []
    for i, port in enumerate(spec.ports):
        if port.node_port or not wants:
            out.append(port.node_port)
            continue
        if port.port in by_port:
            out.append(by_port[port.port])
            continue
        start = _hash(svc.ref, port.name, port.port)
        chosen = next(
            (rng.first + (start + step) % size for step in range(size) if rng.first + (start + step) % size not in taken),
            0,
        )
        if not chosen:
            problems.append(
                Problem(f"Internal error: no free node port left in {rng}", ("spec", "ports", i, "nodePort"), entry.origin, svc.kind, svc.ref)
            )
        taken.add(chosen)
        by_port[port.port] = chosen
        out.append(chosen)
    return tuple(out)
