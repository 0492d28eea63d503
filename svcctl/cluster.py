"""What cluster objects in the input add to the node settings: ServiceCIDRs add service CIDRs
(allocation, and the drop of unallocated addresses), this node's Node object gives its IPs.

kube-proxy learns both from the API server (ServiceCIDR objects; its own Node); svcctl reads them
from the manifests like every other object, and they act as settings from then on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Iterable

from .model import Node, ServiceCIDR
from .options import Options


def options_for(options: Options, service_cidrs: Iterable[ServiceCIDR], nodes: Iterable[Node]) -> Options:
    """``options`` with the ServiceCIDRs' ranges after the configured ones (each once; allocation
    takes the first range of a family) and the IPs of the Node named ``options.node_name``."""
    cidrs = dict.fromkeys(options.service_cidrs)
    for sc in sorted(service_cidrs, key=lambda s: s.metadata.name):
        cidrs.update(dict.fromkeys(ipaddress.ip_network(c) for c in sc.spec.cidrs))
    node = next((n for n in nodes if n.metadata.name == options.node_name), None)
    node_ips = tuple(ip for _, ip in sorted(node.primary_ips().items())) if node else ()
    if tuple(cidrs) == options.service_cidrs and node_ips == options.node_ips:
        return options
    return replace(options, service_cidrs=tuple(cidrs), node_ips=node_ips)
