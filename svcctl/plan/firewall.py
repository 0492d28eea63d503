"""loadBalancerSourceRanges: which sources may reach a Service port's LoadBalancer IPs."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from ..options import Network
from ..resolve import ResolvedService
from .dispatch import of_family
from .model import Destination


def collapsed(networks: Iterable[Network], version: int) -> tuple[str, ...]:
    """The networks of one IP family, merged where they overlap or touch, in address order:
    interval sets refuse overlapping elements (nft: "conflicting intervals specified"). A single
    address is written without its /32 (/128), as nft lists it, so that the elements an apply
    reads back compare equal to the planned ones."""
    same: list[Any] = [n for n in networks if n.version == version]  # one family: collapse_addresses needs that
    return tuple(str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in ipaddress.collapse_addresses(same))


def firewall(svc: ResolvedService, destinations: list[Destination], version: int, node_ip: str = "") -> tuple[tuple[Destination, tuple[str, ...]], ...]:
    """(LB IP port, allowed ranges) for the LoadBalancer IPs among ``destinations`` (the external
    addresses this port holds). As kube-proxy: only the ranges of this family count; none of
    this family, or a /0 among them, means "allow any" (no firewall), not "allow nobody".

    When the ranges let this node in (``node_ip``, its primary IP of this family), they also let
    in the LoadBalancer IPs themselves as sources: the node reaching a VIP it holds locally
    connects from that VIP (kube-proxy's allowFromNode)."""
    networks = [n for n in svc.source_ranges if n.version == version]
    ranges = collapsed(networks, version)
    if not ranges or any(r.endswith("/0") for r in ranges):
        return ()
    vips = list(dict.fromkeys(of_family(svc.load_balancer_ips, version)))  # each IP once
    if node_ip and any(ipaddress.ip_address(node_ip) in n for n in networks):
        ranges = collapsed([*networks, *(ipaddress.ip_network(v) for v in vips)], version)
    out = []
    for ip in vips:
        for d in destinations:
            if d.address == ip:
                out.append((d, ranges))
                break
    return tuple(out)
