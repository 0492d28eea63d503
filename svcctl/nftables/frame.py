"""The frame of svcctl's tables, declared once: the named sets and maps every table has, the hook
chains and their helpers, and the prefixes of the objects made per Service port. The templates
write these declarations out, the apply decision and the ownership check read them; nothing
else spells a frame object's name.

docs/nft-layout.md explains what each object is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

# Key parts: ADDR is the family's address type (ipv4_addr / ipv6_addr).
ADDR, PROTO, PORT = "addr", "inet_proto", "inet_service"
MASQUERADE_MARK = 0x4000  # the bit kube-proxy uses too; set by chains, consumed by nat-postrouting
TABLE_COMMENT = "svcctl: Kubernetes Services"  # set when a table is created; later loads cannot change it
MARKER_PREFIX = "frame-"  # every table svcctl makes holds an empty set frame-<hash of its frame>

# Prefixes of the objects made per Service port: chains with its endpoints (svc-, local-),
# the external route (ext-), and the session-affinity set of one endpoint (aff-).
SVC, LOCAL, EXT, AFFINITY = "svc", "local", "ext", "aff"
PORT_CHAIN_KINDS = (SVC, LOCAL, EXT)


@dataclass(frozen=True)
class SetSpec:
    """A named set or verdict map of the frame. Its elements come from the plan; an apply
    rewrites them in full (only the dynamic affinity sets, made per port, keep theirs)."""

    name: str
    key: tuple[str, ...]
    comment: str
    is_map: bool = False
    interval: bool = False

    def __str__(self) -> str:  # templates write {{ S.service_ips }} for the name
        return self.name


@dataclass(frozen=True)
class Hook:
    type: str  # filter or nat
    hook: str
    priority: str


@dataclass(frozen=True)
class ChainSpec:
    name: str
    comment: str = ""
    hook: Hook | None = None  # None: a regular chain, reached by jumps

    def __str__(self) -> str:
        return self.name


SERVICE_IPS = SetSpec("service-ips", (ADDR, PROTO, PORT), "ClusterIPs, externalIPs and LoadBalancer IPs", is_map=True)
SERVICE_NODEPORTS = SetSpec("service-nodeports", (PROTO, PORT), "NodePorts", is_map=True)
NO_ENDPOINT_SERVICES = SetSpec(
    "no-endpoint-services", (ADDR, PROTO, PORT), "service IPs without usable endpoints: reject or drop", is_map=True
)
NO_ENDPOINT_NODEPORTS = SetSpec(
    "no-endpoint-nodeports", (PROTO, PORT), "NodePorts without usable endpoints: reject or drop", is_map=True
)
CLUSTER_IPS = SetSpec(
    "cluster-ips", (ADDR,), "ClusterIPs: traffic to them is masqueraded as the node options say, rejected on ports no Service holds"
)
SERVICE_CIDRS = SetSpec("service-cidrs", (ADDR,), "--service-cidr and ServiceCIDRs: unallocated addresses are dropped", interval=True)
FIREWALL_IPS = SetSpec("firewall-ips", (ADDR, PROTO, PORT), "LoadBalancer IP ports with loadBalancerSourceRanges")
FIREWALL_ALLOW = SetSpec(
    "firewall-allow", (ADDR, PROTO, PORT, ADDR), "LoadBalancer IP ports and the source ranges allowed to reach them", interval=True
)
HAIRPIN = SetSpec("hairpin", (ADDR, ADDR), "endpoint . endpoint: a local endpoint reaching itself through its Service")
UDP_ENDPOINTS = SetSpec(
    "udp-endpoints", (ADDR, PORT), "UDP endpoints: an apply that removes one deletes the conntrack entries to it"
)
CLUSTER_CIDRS = SetSpec("cluster-cidrs", (ADDR,), "--cluster-cidr", interval=True)
NODEPORT_CIDRS = SetSpec("nodeport-cidrs", (ADDR,), "--nodeport-addresses", interval=True)

STATIC_SETS = (
    SERVICE_IPS, SERVICE_NODEPORTS, NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS, CLUSTER_IPS, SERVICE_CIDRS,
    FIREWALL_IPS, FIREWALL_ALLOW, HAIRPIN, UDP_ENDPOINTS, CLUSTER_CIDRS, NODEPORT_CIDRS,
)

# nft 1.0.6 takes `priority dstnat` on prerouting but not on output: numbers there.
FILTER_PREROUTING = ChainSpec(
    "filter-prerouting", "loadBalancerSourceRanges, checked before DNAT", Hook("filter", "prerouting", "dstnat - 10")
)
FILTER_OUTPUT_PRE_DNAT = ChainSpec(
    "filter-output-pre-dnat", "loadBalancerSourceRanges for traffic from this node, checked before DNAT",
    Hook("filter", "output", "-110"),
)
FILTER_INPUT = ChainSpec("filter-input", "", Hook("filter", "input", "filter - 10"))
FILTER_FORWARD = ChainSpec("filter-forward", "", Hook("filter", "forward", "filter - 10"))
FILTER_OUTPUT = ChainSpec(
    "filter-output", "after nat output: traffic DNATed there is not checked", Hook("filter", "output", "filter - 10")
)
ENDPOINTS_CHECK = ChainSpec("endpoints-check", "new connections to service IPs without usable endpoints: reject or drop")
# Only the input hook sees traffic to the node's own addresses: NodePorts are checked there alone.
NODEPORT_ENDPOINTS_CHECK = ChainSpec("nodeport-endpoints-check", "new connections to NodePorts without usable endpoints: reject or drop")
CLUSTER_IPS_CHECK = ChainSpec(
    "cluster-ips-check", "new connections the dispatch left alone: to a ClusterIP (no such port: reject), to the service CIDRs (drop)"
)
REJECT_CHAIN = ChainSpec("reject-chain")
NAT_PREROUTING = ChainSpec("nat-prerouting", "", Hook("nat", "prerouting", "dstnat"))
NAT_OUTPUT = ChainSpec("nat-output", "", Hook("nat", "output", "-100"))
NAT_POSTROUTING = ChainSpec("nat-postrouting", "", Hook("nat", "postrouting", "srcnat"))

FRAME_CHAINS = (
    FILTER_PREROUTING, FILTER_OUTPUT_PRE_DNAT, FILTER_INPUT, FILTER_FORWARD, FILTER_OUTPUT,
    ENDPOINTS_CHECK, NODEPORT_ENDPOINTS_CHECK, CLUSTER_IPS_CHECK, REJECT_CHAIN, NAT_PREROUTING, NAT_OUTPUT, NAT_POSTROUTING,
)

# What the templates see: S.<set>, C.<chain> (attribute names are the names with "_" for "-").
S = SimpleNamespace(**{s.name.replace("-", "_"): s for s in STATIC_SETS})
C = SimpleNamespace(**{c.name.replace("-", "_"): c for c in FRAME_CHAINS})


def per_port(name: str, kinds: tuple[str, ...]) -> bool:
    """Whether a live object's name is one made per Service port, of one of these kinds."""
    return name.startswith(tuple(f"{kind}-" for kind in kinds))
