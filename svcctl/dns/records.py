"""Resolved Services -> the DNS records the Kubernetes DNS-Based Service Discovery specification
v1.1.0 asks for (kubernetes/dns docs/specification.md; "spec 2.3.1" below is its section), as
CoreDNS's kubernetes plugin answers them.

Pure: the same Services and settings give the same records. Every name is built from names the
API server's rules checked (Service, namespace, port names; endpoint hostnames) or that svcctl
generates (labels from addresses, reverse names); the writer (``zone``) checks them once more.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple, Union

from ..formats import parse_ip
from ..load import gc_paused
from ..model import ServiceType
from ..problems import InvalidInput, Problem
from ..resolve import ResolvedService
from ..validate import Inventory
from .names import MAX_LABEL, MAX_NAME, endpoint_label, reverse_name, too_long
from .settings import DnsSettings

SCHEMA_VERSION = "1.1.0"  # spec 1
SCHEMA_TTL = 28800  # CoreDNS's fixed TTL for dns-version (and the spec's example)
# SRV priority and weight are not prescribed (spec 2.3.2); CoreDNS gives every target priority 0
# and an equal share of 100 as weight.
SRV_PRIORITY = 0
SRV_WEIGHT_TOTAL = 100
# The Service whose addresses CoreDNS gives ns.dns.<zone> when the DNS Service is this one (the
# name kubeadm and most distributions give CoreDNS's Service).
DNS_SERVICE = "kube-system/kube-dns"
NAMESERVER_FALLBACK = "127.0.0.1"


# ---- records as data ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _One:
    """Data of one field, written as it is: an address in its canonical text (A, AAAA) or an
    absolute domain name (NS, CNAME, PTR)."""

    value: str

    def text(self) -> str:
        return self.value


class A(_One):
    __slots__ = ()


class AAAA(_One):
    __slots__ = ()


class NS(_One):
    __slots__ = ()


class CNAME(_One):
    __slots__ = ()


class PTR(_One):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class TXT:
    value: str  # one character-string

    def text(self) -> str:
        return f'"{self.value}"'


class _Fields:
    """Data of several fields, written in their order, separated by blanks (RFC 1035 5.1)."""

    __slots__ = ()

    def text(self) -> str:
        fields: tuple[str, ...] = self.__slots__  # type: ignore[attr-defined]
        return " ".join(str(getattr(self, f)) for f in fields)


@dataclass(frozen=True, slots=True)
class SRV(_Fields):
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class SOA(_Fields):
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


RData = Union[A, AAAA, NS, CNAME, PTR, TXT, SRV, SOA]


class Record(NamedTuple):
    """One resource record of class IN. (A NamedTuple: a zone holds 100,000s of them.)"""

    name: str  # absolute, with the trailing dot
    ttl: int
    data: RData

    @property
    def type(self) -> str:
        return type(self.data).__name__


def address_record(name: str, ttl: int, address: str) -> Record:
    return Record(name, ttl, AAAA(address) if ":" in address else A(address))


def nameserver(domain: str) -> str:
    """The name CoreDNS gives itself in the zone's SOA and NS records."""
    return f"ns.dns.{domain}."


# ---- the cluster's records ----------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRecords:
    forward: tuple[Record, ...]  # under the cluster domain, except its SOA and NS
    reverse: tuple[Record, ...]  # PTR records, under in-addr.arpa and ip6.arpa
    warnings: tuple[str, ...]


@gc_paused()
def cluster_records(inventory: Inventory, services: list[ResolvedService], settings: DnsSettings) -> ClusterRecords:
    """Every record of every Service. Raises InvalidInput, one problem per Service, for a name
    DNS cannot hold (spec records that cannot exist); what the spec leaves open gives a warning."""
    origins = {e.obj.ref: e.origin for e in inventory.services}
    domain, ttl = settings.cluster_domain, settings.ttl
    forward = [Record(f"dns-version.{domain}.", SCHEMA_TTL, TXT(SCHEMA_VERSION))]  # spec 2.2
    forward += _nameserver_addresses(services, domain, ttl)
    reverse: list[Record] = []
    problems: list[Problem] = []
    warnings: list[str] = []
    # CoreDNS answers a PTR query for a cluster IP with the Service alone, before looking at
    # endpoints: an endpoint that has a Service's cluster IP gets no PTR of its own.
    cluster_ips = {ip for s in services for ip in s.cluster_ips}
    for svc in services:
        base = f"{svc.name}.{svc.namespace}.svc.{domain}."
        records: list[Record] = []
        ptrs: list[Record] = []
        if svc.type is ServiceType.EXTERNAL_NAME:
            problem = _external_name(svc, base, ttl, records, warnings)
        elif svc.headless:
            _headless(svc, base, ttl, cluster_ips, records, ptrs, warnings)
            problem = None
        else:
            _cluster_ip(svc, base, ttl, records, ptrs)
            problem = None
        problem = problem or _too_long(records)
        if problem:
            message, path = problem
            problems.append(Problem(message, path, origins.get(svc.ref), "Service", svc.ref))
            continue
        forward += records
        reverse += ptrs
    if problems:
        raise InvalidInput(problems)
    return ClusterRecords(tuple(forward), tuple(reverse), tuple(warnings))


_Problem = tuple[str, tuple[str, ...]]  # message, field path


def _nameserver_addresses(services: list[ResolvedService], domain: str, ttl: int) -> list[Record]:
    """ns.dns.<domain>: the address records of the name in the zone's NS record (in-zone, so the
    zone must hold them: a DNS server refuses a zone whose NS name has no address)."""
    dns_service = next((s for s in services if s.ref == DNS_SERVICE), None)
    addresses = dns_service.cluster_ips if dns_service and dns_service.cluster_ips else (NAMESERVER_FALLBACK,)
    return [address_record(nameserver(domain), ttl, ip) for ip in addresses]


def _cluster_ip(svc: ResolvedService, base: str, ttl: int, records: list[Record], ptrs: list[Record]) -> None:
    """Spec 2.3: A/AAAA for every cluster IP (dual-stack: both), an SRV per named port pointing at
    the Service's own name, a PTR per cluster IP."""
    for ip in svc.cluster_ips:
        records.append(address_record(base, ttl, ip))
        ptrs.append(Record(reverse_name(ip), ttl, PTR(base)))
    for port in svc.ports:
        if port.name:  # unnamed ports have no SRV record
            owner = f"_{port.name}._{port.protocol.value.lower()}.{base}"
            records.append(Record(owner, ttl, SRV(SRV_PRIORITY, SRV_WEIGHT_TOTAL, port.port, base)))


def _headless(
    svc: ResolvedService, base: str, ttl: int, cluster_ips: set[str],
    records: list[Record], ptrs: list[Record], warnings: list[str],
) -> None:
    """Spec 2.4: the ready endpoints' addresses at the Service's name; each ready endpoint's
    address at <hostname>.<service> (its hostname, or the generated label); an SRV per ready
    endpoint and named port, with the endpoint's own port (clients connect to it directly); a PTR
    per ready endpoint. The addresses are every endpoint's, whatever its ports (CoreDNS reads
    them so; a headless Service may have no ports). Not-ready endpoints get no record at all, so
    a headless Service without ready endpoints is NXDOMAIN. (Ready already holds
    publishNotReadyAddresses: the endpoints controller marks every endpoint of such a Service
    ready, and svcctl does for Pods.)"""
    named: dict[tuple[str, str], None] = {}  # (label, address) in a stable order
    for b in svc.headless_endpoints:  # every endpoint, whatever its ports: a Service may have none
        if b.ready:
            named[(b.hostname or endpoint_label(b.address), b.address)] = None
    targets: dict[tuple[str, str], dict[tuple[int, str], None]] = defaultdict(dict)  # (port name, proto) -> (port, label)
    for port in svc.ports:
        for b in port.backends:
            if b.ready and port.name:
                label = b.hostname or endpoint_label(b.address)
                targets[(port.name, port.protocol.value.lower())][(b.port, label)] = None
    for address in dict.fromkeys(address for _, address in named):
        records.append(address_record(base, ttl, address))
    labels: dict[str, list[str]] = defaultdict(list)
    for label, address in named:
        name = f"{label}.{base}"
        records.append(address_record(name, ttl, address))
        labels[label].append(address)
        if address not in cluster_ips:
            ptrs.append(Record(reverse_name(address), ttl, PTR(name)))
    for (port_name, proto), endpoints in targets.items():
        owner = f"_{port_name}._{proto}.{base}"
        weight = max(1, SRV_WEIGHT_TOTAL // len(endpoints))
        for number, label in endpoints:
            records.append(Record(owner, ttl, SRV(SRV_PRIORITY, weight, number, f"{label}.{base}")))
    for label, addresses in labels.items():
        # Several addresses of one family under one label: the spec allows it ("one such A
        # record for each IP"), but it is two endpoints sharing a hostname, which is rarely meant.
        for family in (4, 6):
            same = [a for a in addresses if (":" in a) == (family == 6)]
            if len(same) > 1:
                warnings.append(
                    f"headless Service {svc.ref}: {len(same)} endpoints share the name {label}.{base} "
                    f"({', '.join(same)}): it answers with all of them"
                )


def _external_name(svc: ResolvedService, base: str, ttl: int, records: list[Record], warnings: list[str]) -> _Problem | None:
    """Spec 2.5: a CNAME to the external name, made absolute. The API server checks the name as
    a DNS-1123 subdomain, which allows what DNS cannot hold as a CNAME target."""
    target = svc.external_name.removesuffix(".")
    path = ("spec", "externalName")
    if any(len(label) > MAX_LABEL for label in target.split(".")):
        return f'Invalid value: "{svc.external_name}": a DNS label has at most {MAX_LABEL} characters (RFC 1035 2.3.4): no CNAME can point to it', path
    if parse_ip(target) is not None:
        # The API server accepts an IPv4 address as a name of digits; DNS servers do not resolve
        # such names, and CoreDNS gives the Service no record (NXDOMAIN).
        warnings.append(f"ExternalName Service {svc.ref}: externalName {svc.external_name} is an IP address, not a DNS name: no record")
        return None
    records.append(Record(base, ttl, CNAME(f"{target}.")))
    return None


def _too_long(records: list[Record]) -> _Problem | None:
    """The first name of a Service's records that DNS cannot hold. (Every label is at most 63
    characters by the API's rules; the sum depends on the names and the cluster domain.)"""
    for r in records:
        if too_long(r.name):
            return (
                f'Invalid value: "{r.name}": a DNS name has at most {MAX_NAME} characters (RFC 1035 2.3.4), '
                f"this one {len(r.name) - 1}: shorten the names or the cluster domain",
                ("metadata", "name"),
            )
    return None
