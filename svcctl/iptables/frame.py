"""The frame of svcctl's iptables rules, declared once: the fixed chains of each table, the jumps
that hook them into the built-in chains, and the prefixes of the chains made per Service port.
The layout fills the chains, the templates write them out, the apply decision recognizes
svcctl's chains by ``PREFIX``; nothing else spells a frame chain's name.

docs/iptables-layout.md explains what each chain is for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

# Every chain svcctl makes starts with this, in both tables and both families; kube-proxy's
# start with KUBE-, so both can run on one node. iptables refuses chain names over 28 characters.
PREFIX = "SVCCTL-"
NAME_MAX = 28
# The bit kube-proxy uses too (and svcctl's nftables back end): set by chains, consumed by
# SVCCTL-POSTROUTING, which masquerades the packet and clears the bit.
MASQUERADE_MARK = 0x4000


class TableName(StrEnum):
    """The iptables tables svcctl writes, in the order an apply commits them: filter first, so
    that a failure between the two leaves the new rejects and drops with the old DNAT rules, which
    never conflict (filter rules match addresses DNAT has not rewritten)."""

    FILTER = "filter"
    NAT = "nat"


# Per Service port: SVC (all usable endpoints), SVL (this node's), EXT (external traffic),
# FW (loadBalancerSourceRanges, filter table); per endpoint: SEP (hairpin and DNAT).
SVC, SVL, EXT, FW, SEP = "SVC", "SVL", "EXT", "FW", "SEP"

# nat
SERVICES = f"{PREFIX}SERVICES"  # ClusterIPs, externalIPs, LB IPs; then NodePorts (filter: rejects, drops)
NODEPORTS = f"{PREFIX}NODEPORTS"
MARK_MASQ = f"{PREFIX}MARK-MASQ"
MASQ_OUTSIDE = f"{PREFIX}MASQ-OUTSIDE"  # marks sources outside --cluster-cidr
POSTROUTING = f"{PREFIX}POSTROUTING"
# filter
FIREWALL = f"{PREFIX}FIREWALL"
CLUSTER_IPS = f"{PREFIX}CLUSTER-IPS"  # what the dispatch left alone: to a ClusterIP (reject) ...
SERVICE_CIDRS = f"{PREFIX}SERVICE-CIDRS"  # ... or elsewhere in the service CIDRs (drop)

FRAME_CHAINS = {
    TableName.FILTER: (FIREWALL, SERVICES, NODEPORTS, CLUSTER_IPS, SERVICE_CIDRS),
    TableName.NAT: (SERVICES, NODEPORTS, MARK_MASQ, MASQ_OUTSIDE, POSTROUTING),
}


class Hook(NamedTuple):
    """A jump from a built-in chain into a frame chain. ``new_only``: for the first packet of a
    connection only (conntrack state NEW), as the filter checks need."""

    builtin: str
    chain: str
    comment: str
    new_only: bool = False


# In the order they stand in each built-in chain, from the top: an apply inserts a missing one
# at the top and never moves one that is there (other tools' rules keep their places). ClusterIPs
# are never the node's own addresses: their check needs no INPUT hook.
_FIREWALL = (FIREWALL, "svcctl load balancer firewall")
_SERVICES = (SERVICES, "svcctl service portals")
_CLUSTER_IPS = (CLUSTER_IPS, "svcctl cluster IPs")
HOOKS = {
    TableName.FILTER: tuple(
        Hook(builtin, chain, comment, new_only=True)
        for builtin, chains in (
            ("INPUT", (_FIREWALL, _SERVICES)),
            ("FORWARD", (_FIREWALL, _SERVICES, _CLUSTER_IPS)),
            ("OUTPUT", (_FIREWALL, _SERVICES, _CLUSTER_IPS)),
        )
        for chain, comment in chains
    ),
    TableName.NAT: (
        Hook("PREROUTING", SERVICES, "svcctl service portals"),
        Hook("OUTPUT", SERVICES, "svcctl service portals"),
        Hook("POSTROUTING", POSTROUTING, "svcctl postrouting rules"),
    ),
}


def is_ours(chain: str) -> bool:
    return chain.startswith(PREFIX)
