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


def claim(services: list[ResolvedService], version: int) -> Claims:
    owners: dict[Key, str] = {}
    proxied = [(s, ips[0]) for s in services if s.proxied and (ips := of_family(s.cluster_ips, version))]
    for svc, cluster_ip in proxied:
        for port in svc.ports:
            owners.setdefault(Destination(cluster_ip, port.protocol, port.port), svc.ref)
    warnings = []
    for svc, _ in proxied:
        external = of_family(svc.external_ips, version) + of_family(svc.load_balancer_ips, version)
        for port in svc.ports:
            number = node_port(svc, port.node_port)
            if not (external or number):
                continue
            keys: list[Key] = [Destination(ip, port.protocol, port.port) for ip in external]
            if number:
                keys.append(NodePort(port.protocol, number))
            for key in keys:
                owner = owners.setdefault(key, svc.ref)
                if owner != svc.ref:
                    what = f"address {key.address}" if isinstance(key, Destination) else "NodePort"
                    warnings.append(
                        f"Service {svc.ref}: {what} {key.protocol.value.lower()} {key.port} is already Service {owner}'s: no rule for it here"
                    )
    return Claims(owners, tuple(warnings))
