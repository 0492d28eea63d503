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


def firewall(svc: ResolvedService, destinations: list[Destination], version: int) -> tuple[tuple[Destination, tuple[str, ...]], ...]:
    """(LB IP port, allowed ranges) for the LoadBalancer IPs among ``destinations`` (the external
    addresses this port holds). As kube-proxy: only the ranges of this family count; none of
    this family, or a /0 among them, means "allow any" (no firewall), not "allow nobody"."""
    ranges = collapsed(svc.source_ranges, version) if svc.source_ranges else ()
    if not ranges or any(r.endswith("/0") for r in ranges):
        return ()
    out = []
    for ip in dict.fromkeys(of_family(svc.load_balancer_ips, version)):  # each IP once
        for d in destinations:
            if d.address == ip:
                out.append((d, ranges))
                break
    return tuple(out)
