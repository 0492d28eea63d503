"""The plan as data, for any back end: what happens to a new connection to each Service address,
in Kubernetes and packet words (a Service port's endpoint groups, where its addresses and node
ports lead, which traffic is masqueraded, rejected or dropped). No back end's vocabulary here:
the nftables and iptables back ends each turn this into their own objects and names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple, Union

from ..model import Protocol
from ..topology import HintUse


# NodePorts never answer on loopback addresses (kube-proxy neither): the node-port rules leave them out.
LOOPBACK = {4: "127.0.0.0/8", 6: "::1"}


class MasqueradeScope(StrEnum):
    """Which traffic to a ClusterIP is masqueraded (besides external and hairpin traffic)."""

    NONE = "none"  # no --cluster-cidr of this family, no --masquerade-all
    OUTSIDE_CLUSTER = "outside-cluster"  # sources outside --cluster-cidr
    ALL = "all"  # --masquerade-all


class PortRef(NamedTuple):
    """The Service port a part of the plan belongs to."""

    namespace: str
    name: str
    port_name: str
    port: int
    protocol: Protocol

    @property
    def ident(self) -> str:
        """``ns/name/proto/portname`` (or the port number when the port has no name): unique."""
        return f"{self.namespace}/{self.name}/{self.protocol.value.lower()}/{self.port_name or self.port}"

    @property
    def label(self) -> str:
        """``ns/name:portname/proto``, as people name a Service port."""
        return f"{self.namespace}/{self.name}:{self.port_name or self.port}/{self.protocol.value.lower()}"

    @property
    def service(self) -> str:
        return f"{self.namespace}/{self.name}"


class Endpoint(NamedTuple):
    """A DNAT target: an endpoint's address (canonical text) and port."""

    address: str
    port: int


class Pick(NamedTuple):
    """One step of an endpoint cascade: a new connection that reaches it goes to ``endpoint``
    with probability 1/``modulus`` (always, when ``modulus`` is None), else on to the next step."""

    endpoint: Endpoint
    modulus: int | None


@dataclass(frozen=True)
class EndpointGroup:
    """The endpoints one Service port sends a connection to: all of its usable endpoints, or
    (``local``) this node's. With ``affinity_timeout``, a client goes back to the endpoint it had
    within that many seconds (ClientIP session affinity) before any new choice is made."""

    port: PortRef
    local: bool
    picks: tuple[Pick, ...]
    affinity_timeout: int | None
    fallback: bool = False  # no endpoint was ready: these are the serving, terminating ones
    hints: HintUse | None = None  # how topology hints chose these endpoints; None: the endpoints have none

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(p.endpoint for p in self.picks)

    def probabilities(self) -> tuple[tuple[Endpoint, Fraction], ...]:
        """The chance that a new connection (from a client without affinity) goes to each
        endpoint: a pick is reached when every earlier one missed, and then takes 1/modulus of
        what reaches it (all of it without a modulus). Exact; an endpoint listed twice adds up."""
        shares: dict[Endpoint, Fraction] = {}
        reaching = Fraction(1)
        for p in self.picks:
            taken = reaching / p.modulus if p.modulus else reaching
            shares[p.endpoint] = shares.get(p.endpoint, Fraction(0)) + taken
            reaching -= taken
        return tuple(shares.items())


@dataclass(frozen=True)
class ExternalRoute:
    """Where traffic to a NodePort, externalIP or LoadBalancer IP of one Service port goes.

    externalTrafficPolicy Cluster: marked for masquerade, then all endpoints. Local: pods (from
    the cluster CIDR) and the node itself still reach all endpoints, as in kube-proxy; other
    clients only this node's endpoints, with their source address kept."""

    port: PortRef
    local_policy: bool
    mark_all: bool  # mark every packet for masquerade first
    pods_to: EndpointGroup | None  # for sources in the cluster CIDRs
    node_to: EndpointGroup | None  # for traffic from the node itself (marked for masquerade)
    then_to: EndpointGroup | None  # for everything else; None: dropped by the filter check


class Frontend(StrEnum):
    """How a connection reaches a Service port."""

    CLUSTER_IP = "cluster-ip"
    EXTERNAL_IP = "external-ip"
    LOAD_BALANCER_IP = "load-balancer-ip"
    NODE_PORT = "node-port"


class Action(StrEnum):
    """What happens to a new connection that has nowhere to go."""

    REJECT = "reject"  # no usable endpoints: refused at once (TCP reset, ICMP unreachable)
    DROP = "drop"  # usable endpoints, but none this traffic may use (Local policy)


Target = Union[EndpointGroup, ExternalRoute]


class Destination(NamedTuple):
    """A service address and port: a ClusterIP, externalIP or LoadBalancer IP."""

    address: str
    protocol: Protocol
    port: int


class NodePort(NamedTuple):
    protocol: Protocol
    port: int


@dataclass(frozen=True)
class PortPlan:
    """Everything one Service port contributes to one IP family's rules."""

    port: PortRef
    frontends: tuple[tuple[Destination, Frontend], ...]  # its ClusterIP, and the externalIPs and LB IPs it holds
    groups: tuple[EndpointGroup, ...]  # the all-endpoints group first, then the local one
    route: ExternalRoute | None
    service_ips: tuple[tuple[Destination, Target], ...]
    node_ports: tuple[tuple[NodePort, Target], ...]
    no_endpoint_ips: tuple[tuple[Destination, Action], ...]
    no_endpoint_node_ports: tuple[tuple[NodePort, Action], ...]
    firewall: tuple[tuple[Destination, tuple[str, ...]], ...]  # LB IP port -> allowed source CIDRs
    hairpin: tuple[str, ...]  # endpoint addresses that may reach themselves through the Service
    udp_endpoints: tuple[Endpoint, ...]


class FamilySettings(NamedTuple):
    """What one family's rules take from the node options alone, the same for every Service."""

    masquerade: MasqueradeScope
    cluster_cidrs: tuple[str, ...]  # merged, in address order
    nodeport_cidrs: tuple[str, ...]  # --nodeport-addresses of this family, merged
    service_cidrs: tuple[str, ...]  # --service-cidr of this family, merged
    node_ip: str = ""  # this node's primary IP of this family (its Node object), if known


class ServicePlan(NamedTuple):
    """One Service's part of one family's rules: its cluster IP of that family and its ports."""

    cluster_ip: str
    ports: tuple["PortPlan", ...]


@dataclass(frozen=True)
class FamilyPlan:
    """One IP family's rules: the Service ports' parts and the node-wide settings."""

    version: int  # 4 or 6
    masquerade: MasqueradeScope  # applies to traffic to the cluster IPs
    cluster_cidrs: tuple[str, ...]  # merged, in address order
    nodeport_cidrs: tuple[str, ...]  # --nodeport-addresses of this family, merged
    # Every cluster IP of a proxied Service: traffic to one of them on a port no Service port
    # holds is rejected (kube-proxy's cluster-ips-check), after the dispatch found nothing.
    cluster_ips: tuple[str, ...]
    # The service CIDRs: traffic to an address in them that no Service holds is dropped.
    service_cidrs: tuple[str, ...]
    ports: tuple[PortPlan, ...]  # in namespace/name order, then the Service's port order

    @property
    def groups(self) -> tuple[EndpointGroup, ...]:
        return tuple(g for p in self.ports for g in p.groups)

    @property
    def routes(self) -> tuple[ExternalRoute, ...]:
        return tuple(p.route for p in self.ports if p.route is not None)


@dataclass(frozen=True)
class Plan:
    families: tuple[FamilyPlan, ...]  # IPv4, then IPv6
    warnings: tuple[str, ...] = ()  # what the input asks for that the rules cannot do
