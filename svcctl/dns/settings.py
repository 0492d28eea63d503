"""The settings of ``svcctl dns``, checked: cluster domain, zone, TTL and SOA serial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..problems import InvalidInput, Problem
from .names import ZoneName, cluster_domain, zone_name

DEFAULT_CLUSTER_DOMAIN = "cluster.local"  # kubelet's and CoreDNS's usual cluster domain
DEFAULT_TTL = 5  # CoreDNS's kubernetes plugin: `ttl` defaults to 5 seconds...
MAX_TTL = 3600  # ...and may be 0 to 3600
MAX_SERIAL = 2**32 - 1  # RFC 1035 3.3.13: an unsigned 32-bit number


@dataclass(frozen=True)
class DnsSettings:
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN  # without the trailing dot
    ttl: int = DEFAULT_TTL
    serial: int | None = None  # None: derived from the zone's content (svcctl.dns.zone)
    zone: ZoneName | None = None  # None: the forward zone, the cluster domain

    @property
    def forward_zone(self) -> ZoneName:
        return ZoneName(f"{self.cluster_domain}.", False)


def dns_settings(given: dict[str, Any], where: str = "command line") -> DnsSettings:
    """Check the settings given (by their option names without dashes: cluster-domain, zone, ttl,
    serial; None or missing = not given). Raises InvalidInput with a line for each bad one,
    ``WHERE: NAME: message``, as the node settings are reported."""
    problems: list[str] = []

    def check(key: str, convert: Any) -> Any:
        value = given.get(key)
        if value is None:
            return None
        try:
            return convert(value)
        except ValueError as err:
            problems.append(f"{key}: {err}")
            return None

    domain = check("cluster-domain", _text(cluster_domain)) or DEFAULT_CLUSTER_DOMAIN
    zone = check("zone", _text(lambda value: zone_name(value, domain)))
    ttl = check("ttl", _number(0, MAX_TTL, "a TTL in seconds (CoreDNS's range)"))
    serial = check("serial", _number(0, MAX_SERIAL, "an SOA serial"))
    if problems:
        raise InvalidInput([Problem(p, file=where) for p in problems])
    return DnsSettings(domain, DEFAULT_TTL if ttl is None else ttl, serial, zone)


def _text(convert: Any) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a name")
        return convert(value)

    return check


def _number(low: int, high: int, what: str) -> Any:
    def check(value: Any) -> int:
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f'"{value}" is not {what}: a whole number from {low} to {high}')
        return value

    return check
