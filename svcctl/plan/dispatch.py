"""Where each service address and node port leads: an endpoint group, the external route, or
(without usable endpoints) a reject or a drop.

Two Services may name the same externalIP (or LoadBalancer IP) and port, even one that is
another Service's ClusterIP; the API server allows it, but one address and port can lead to one
place only. ClusterIPs are claimed first, so an externalIP never takes over another Service's
ClusterIP (CVE-2020-8554); among external addresses the first Service port in namespace/name
order keeps the key. Every loser is a warning.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Union

from ..model import ServiceType
from ..resolve import ResolvedService
from .model import Destination, NodePort

Key = Union[Destination, NodePort]


def of_family(addresses: Iterable[str], version: int) -> list[str]:
    if not addresses:  # most Services have no externalIPs, no LoadBalancer IPs: 100,000s of calls
        return []
    v6 = version == 6
    return [a for a in addresses if (":" in a) == v6]


def node_port(svc: ResolvedService, number: int) -> int:
    """The port's node port, if its Service type opens one (a stray nodePort on a ClusterIP
    Service opens nothing)."""
    return number if svc.type in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER) else 0


class Claims(NamedTuple):
    owners: dict[Key, str]  # key -> namespace/name of the Service it leads to
    warnings: tuple[str, ...]

    def owns(self, key: Key, svc: ResolvedService) -> bool:
        return self.owners.get(key) == svc.ref


def claimed(svc: ResolvedService, version: int) -> tuple[list[Key], list[Key]]:
    """What a Service asks for in one family: its ClusterIP ports (claimed before any external
    key), then its externalIP, LoadBalancer IP and NodePort keys, in port order. Nothing for a
    Service without rules in this family."""
    ips = of_family(svc.cluster_ips, version)
    if not (svc.proxied and ips):
        return [], []
    internal: list[Key] = [Destination(ips[0], port.protocol, port.port) for port in svc.ports]
    external_ips = of_family(svc.external_ips, version) + of_family(svc.load_balancer_ips, version)
    external: list[Key] = []
    for port in svc.ports:
        external += [Destination(ip, port.protocol, port.port) for ip in external_ips]
        number = node_port(svc, port.node_port)
        if number:
            external.append(NodePort(port.protocol, number))
    return internal, external


def taken(svc: str, key: Key, owner: str) -> str:
    """The warning for a key Service ``svc`` asks for that Service ``owner`` holds."""
    what = f"address {key.address}" if isinstance(key, Destination) else "NodePort"
    return f"Service {svc}: {what} {key.protocol.value.lower()} {key.port} is already Service {owner}'s: no rule for it here"


def claim(services: list[ResolvedService], version: int) -> Claims:
    owners: dict[Key, str] = {}
    wanted = [(svc, claimed(svc, version)) for svc in services]
    for svc, (internal, _) in wanted:
        for key in internal:
            owners.setdefault(key, svc.ref)
    warnings = []
    for svc, (_, external) in wanted:
        for key in external:
            owner = owners.setdefault(key, svc.ref)
            if owner != svc.ref:
                warnings.append(taken(svc.ref, key, owner))
    return Claims(owners, tuple(warnings))
