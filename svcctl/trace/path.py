"""The way of a new connection's first packet through svcctl's rules, read from the plan.

The rules a back end writes check a packet in this order (the nftables frame:
templates/nftables/objects.nft.j2 ``frame_chains``, explained in docs/nft-layout.md §3):

1. before DNAT (filter prerouting, or filter output for the node's own traffic, priority -110):
   a new connection to a LoadBalancer IP port with loadBalancerSourceRanges, from a source in
   none of them, is dropped;
2. DNAT (nat prerouting, or nat output): a connection to a cluster IP is marked for masquerade
   as the masquerade scope says; then the Service address, protocol and port lead to an
   endpoint group or an external route; else, on one of this node's addresses (never loopback;
   within --nodeport-addresses when given), the protocol and port to a NodePort's; an external
   route marks (policy Cluster) and sends pods, the node and other clients each their way
   (docs/nft-layout.md §3.2, §3.3); a group picks an endpoint by its cascade;
3. after DNAT (filter input, forward, output): a connection that was not DNATed and is addressed
   to a Service port without usable endpoints is rejected or dropped; then (forward and output
   only) one to a cluster IP on a port no Service port holds is rejected, and one to an address
   of the service CIDRs that no Service holds dropped;
4. nat postrouting: a marked connection is masqueraded, and so is one DNATed back to its source
   (hairpin).

This module follows that order over the plan's data, so that it describes the rules a back end
makes from the same plan; ``svcctl trace --kernel`` checks it against the kernel.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Iterable, TypeVar

from ..plan.model import (
    LOOPBACK,
    Action,
    Destination,
    Endpoint,
    EndpointGroup,
    ExternalRoute,
    FamilyPlan,
    Frontend,
    MasqueradeScope,
    NodePort,
    Plan,
    PortPlan,
    PortRef,
    Target,
)
from ..formats import cidr_holding
from ..topology import HintUse, Mode
from .packet import Packet, endpoint_text

T = TypeVar("T")


class Verdict(StrEnum):
    DNAT = "dnat"  # sent to an endpoint
    REJECT = "reject"  # refused at once: TCP reset, ICMP port unreachable
    DROP = "drop"  # dropped: the client times out
    UNTOUCHED = "untouched"  # no rule of svcctl's applies: routing decides


@dataclass(frozen=True)
class Candidate:
    """An endpoint the connection may go to, the chance that it does, and whether the endpoint
    then sees the node's address instead of the client's."""

    endpoint: Endpoint
    probability: Fraction
    masquerade: bool

    @property
    def address(self) -> str:
        return endpoint_text(*self.endpoint)


@dataclass(frozen=True)
class Trace:
    packet: Packet
    verdict: Verdict
    port: PortRef | None  # the Service port the packet is addressed to, if any
    frontend: Frontend | None  # and how
    endpoints: tuple[Candidate, ...]  # with DNAT: every endpoint the connection may go to
    affinity_timeout: int | None  # ClientIP session affinity: a client returns to its endpoint
    node_address: bool  # the destination is no Service address: taken as one of this node's
    reasons: tuple[str, ...]  # every decision on the way, in words, in the order the rules make them
    hints: HintUse | None = None  # with DNAT: how topology hints chose the endpoints (None: no hints)

    @property
    def masquerade(self) -> bool:
        """Whether the source is masqueraded whichever endpoint is chosen (a hairpin connection
        is masqueraded only when it comes back to its source: see each Candidate)."""
        return bool(self.endpoints) and all(c.masquerade for c in self.endpoints)


def _family(plan: Plan, version: int) -> FamilyPlan:
    return next(f for f in plan.families if f.version == version)


def service_name(ref: PortRef) -> str:
    """``ns/name:port`` (the port's name, or its number when it has none)."""
    return f"{ref.service}:{ref.port_name or ref.port}"


_FRONTEND_WORDS = {
    Frontend.CLUSTER_IP: "the ClusterIP",
    Frontend.EXTERNAL_IP: "an externalIP",
    Frontend.LOAD_BALANCER_IP: "a LoadBalancer IP",
}


class _Walk:
    """One packet's way through one family's rules; collects the reasons as it goes."""

    def __init__(self, fp: FamilyPlan, packet: Packet):
        self.fp, self.packet = fp, packet
        self.reasons: list[str] = []
        self.key = Destination(packet.destination, packet.protocol, packet.port)
        self.node_port = NodePort(packet.protocol, packet.port)
        self.pod_cidr = cidr_holding(packet.source, fp.cluster_cidrs)
        local = packet.local
        self.before_dnat = "output, before DNAT" if local else "prerouting, before DNAT"
        self.dnat = "nat output" if local else "nat prerouting"
        self.filter = "filter output" if local else "filter forward"  # set to input for node addresses
        self.node_address = False
        # IPv4 only: Linux routes an IPv6 packet from ::1 off the node (masquerade then gives it
        # the node's address), an IPv4 one from 127.0.0.0/8 not (measured, Linux 6.18).
        self.loopback_source = local and fp.version == 4 and bool(cidr_holding(packet.source, (LOOPBACK[4],)))

    def say(self, where: str, what: str) -> None:
        self.reasons.append(f"{where}: {what}")

    def entry(self, frontend: Frontend | None, by_node_port: Iterable[tuple[NodePort, T]], by_address: Iterable[tuple[Destination, T]]) -> T | None:
        """What a map keyed by NodePort (for the NodePort path) or by address, protocol and port
        (any other) holds for this packet."""
        if frontend is Frontend.NODE_PORT:
            return next((v for k, v in by_node_port if k == self.node_port), None)
        return next((v for k, v in by_address if k == self.key), None)

    # --- the steps, in the rules' order ------------------------------------------------------

    def run(self) -> Trace:
        self.source()
        found = self.destination()
        port, frontend = found if found else (None, None)

        def finish(verdict: Verdict, endpoints: tuple[Candidate, ...] = (), affinity: int | None = None, hints: HintUse | None = None) -> Trace:
            ref = port.port if port else None
            return Trace(self.packet, verdict, ref, frontend, endpoints, affinity, self.node_address, tuple(self.reasons), hints)

        if port is not None and frontend is not Frontend.NODE_PORT and not self.firewall(port):
            return finish(Verdict.DROP)
        target = self.dispatch(port, frontend)
        marked = target is not None and self.cluster_ip_mark()  # (said only where it matters)
        group: EndpointGroup | None
        if isinstance(target, ExternalRoute):
            group, marked = self.route(target, marked)
        else:
            group = target
        if group is None:
            verdict = self.endpoints_check(port, frontend) or self.cluster_ips_check()
            if verdict is None:
                self.say("verdict", "no rule of svcctl's changes the packet: it goes where routing sends it")
                return finish(Verdict.UNTOUCHED)
            return finish(verdict)
        candidates = self.pick(group, marked)
        if self.loopback_source:
            # The rules DNAT it; the kernel then drops it at the second route lookup (the probes
            # of --kernel, sent raw, see exactly that: DNAT, no postrouting).
            self.say("routing", "after DNAT the kernel routes no IPv4 packet from a loopback address off the node "
                     "(assuming net.ipv4.conf.*.route_localnet is 0, its default, which svcctl leaves alone): dropped "
                     "before nat postrouting, unless the endpoint is one of this node's own addresses; a real connection "
                     "from 127.0.0.1 to a Service address fails at once (connect() gives EINVAL)")
            candidates = tuple(dataclasses.replace(c, masquerade=False) for c in candidates)
        else:
            self.postrouting(candidates, marked)
        return finish(Verdict.DNAT, candidates, group.affinity_timeout, group.hints)

    def source(self) -> None:
        p, fp = self.packet, self.fp
        given = " (the default --from)" if p.assumed else ""
        if p.local:
            address = f"{p.source}, an assumed address: give --from node:IP for one of its own" if p.assumed else p.source
            self.say("source", f"this node ({address}): its own traffic takes the output hooks")
        elif self.pod_cidr:
            self.say("source", f"{p.source}, a pod (inside --cluster-cidr {self.pod_cidr})")
        elif fp.cluster_cidrs:
            self.say("source", f"{p.source}{given}, a client outside the cluster (outside --cluster-cidr {', '.join(fp.cluster_cidrs)})")
        else:
            self.say("source", f"{p.source}{given}; with no --cluster-cidr of IPv{fp.version}, pods cannot be told from other clients")

    def destination(self) -> tuple[PortPlan, Frontend] | None:
        """The Service port the packet is addressed to, and how; None when it is none's."""
        p = self.packet
        proto = f"{p.protocol.value.lower()}/{p.port}"
        held = [(pp, d, kind) for pp in self.fp.ports for d, kind in pp.frontends if d.address == p.destination]
        for pp, d, kind in held:
            if d == self.key:
                self.say("destination", f"{p.destination} {proto} is {_FRONTEND_WORDS[kind]} of Service port {service_name(pp.port)}")
                return pp, kind
        if held:
            services = ", ".join(dict.fromkeys(pp.port.service for pp, _, _ in held))
            self.say("destination", f"{p.destination} is a Service address ({services}), but no Service port there is {proto}")
            return None
        cidr = cidr_holding(p.destination, self.fp.service_cidrs)
        if cidr:
            self.say("destination", f"{p.destination} is no Service's address, but inside the service CIDR {cidr}")
            return None
        # No Service address: one of this node's. (The NodePort rule tests that live: fib daddr type local.)
        self.filter = "filter output" if p.local else "filter input"
        self.node_address = True
        what = f"{p.destination} is no Service address: taken as one of this node's addresses"
        if cidr_holding(p.destination, (LOOPBACK[self.fp.version],)):
            self.say("destination", f"{what}, a loopback one: NodePorts never answer there")
            return None
        if self.fp.nodeport_cidrs:
            if not cidr_holding(p.destination, self.fp.nodeport_cidrs):
                self.say("destination", f"{what}, outside --nodeport-addresses {', '.join(self.fp.nodeport_cidrs)}: NodePorts do not answer there")
                return None
            what += " within --nodeport-addresses"
        for pp in self.fp.ports:
            if any(n == self.node_port for n, _ in (*pp.node_ports, *pp.no_endpoint_node_ports)):
                self.say("destination", f"{what}; {proto} is the NodePort of Service port {service_name(pp.port)}")
                return pp, Frontend.NODE_PORT
        self.say("destination", f"{what}; {proto} is no NodePort")
        return None

    def firewall(self, port: PortPlan) -> bool:
        """loadBalancerSourceRanges, checked before DNAT: whether the source may go on."""
        ranges = next((r for d, r in port.firewall if d == self.key), None)
        if ranges is None:
            return True
        allowed = f"loadBalancerSourceRanges of {port.port.service} allow {', '.join(ranges)}"
        inside = cidr_holding(self.packet.source, ranges)
        if inside is None:
            self.say(self.before_dnat, f"{allowed}; {self.packet.source} is in none of them: dropped")
            return False
        self.say(self.before_dnat, f"{allowed}; {self.packet.source} is inside {inside}: allowed")
        return True

    def cluster_ip_mark(self) -> bool:
        """The DNAT chain's first rule: a connection to a cluster IP (any port) is marked for
        masquerade as the masquerade scope says."""
        if self.packet.destination not in self.fp.cluster_ips:
            return False
        scope = self.fp.masquerade
        if scope is MasqueradeScope.ALL:
            self.say(self.dnat, "--masquerade-all: marked for masquerade")
            return True
        if scope is MasqueradeScope.NONE:
            self.say(self.dnat, f"no --cluster-cidr of IPv{self.fp.version} and no --masquerade-all: not marked for masquerade")
            return False
        if self.pod_cidr:
            self.say(self.dnat, "the source is inside the cluster CIDR: not marked for masquerade")
            return False
        self.say(self.dnat, "the source is outside the cluster CIDR: marked for masquerade, so that the endpoint's reply comes back through this node")
        return True

    def dispatch(self, port: PortPlan | None, frontend: Frontend | None) -> Target | None:
        """The DNAT chain's dispatch: where the Service address and port (or the NodePort) lead."""
        if port is None:
            return None
        target = self.entry(frontend, port.node_ports, port.service_ips)
        if target is None:
            self.say(self.dnat, "no endpoint for this traffic: not DNATed")
        return target

    def route(self, r: ExternalRoute, marked: bool) -> tuple[EndpointGroup | None, bool]:
        """An external route (templates: ``external_chain``), rule by rule: the group it sends the
        packet to (None: none, the packet leaves the chain unchanged) and whether it is marked."""
        if r.mark_all:
            marked = True
            self.say(self.dnat, "externalTrafficPolicy Cluster (the endpoint may be on another node): marked for masquerade")
        if r.pods_to is not None and self.pod_cidr:
            self.say(self.dnat, "externalTrafficPolicy Local, but the source is a pod: all endpoints, as kube-proxy does")
            return r.pods_to, marked
        if r.node_to is not None and self.packet.local:
            self.say(self.dnat, "externalTrafficPolicy Local, but the traffic is this node's own: all endpoints, marked for masquerade")
            return r.node_to, True
        if r.then_to is not None:
            if r.local_policy:
                self.say(self.dnat, "externalTrafficPolicy Local: this node's endpoints only" + ("" if marked else ", not marked for masquerade"))
            return r.then_to, marked
        self.say(self.dnat, "externalTrafficPolicy Local and no endpoint on this node: not DNATed")
        return None, marked

    def endpoints_check(self, port: PortPlan | None, frontend: Frontend | None) -> Verdict | None:
        """The filter check after DNAT (endpoints-check), for a connection that was not DNATed: to
        a Service port without usable endpoints for it."""
        if port is None:
            return None
        action = self.entry(frontend, port.no_endpoint_node_ports, port.no_endpoint_ips)
        if action is Action.REJECT:
            self.say(self.filter, f"Service port {service_name(port.port)} has no usable endpoint: rejected, the client is refused at once")
            return Verdict.REJECT
        if action is Action.DROP:
            policy = "internalTrafficPolicy" if frontend is Frontend.CLUSTER_IP else "externalTrafficPolicy"
            self.say(self.filter, f"{policy} Local, and no usable endpoint of {service_name(port.port)} is on this node: dropped")
            return Verdict.DROP
        return None

    def cluster_ips_check(self) -> Verdict | None:
        """The filter check after the endpoints check, on forwarded and the node's own traffic
        (cluster-ips-check, as kube-proxy's): what no rule DNATed, to a cluster IP, is rejected;
        to an address in the service CIDRs that no Service holds, dropped."""
        if self.filter == "filter input":
            return None
        p = self.packet
        if p.destination in self.fp.cluster_ips:
            self.say(self.filter, f"{p.destination} is a ClusterIP, but not of a {p.protocol.value.lower()}/{p.port} Service port: rejected, the client is refused at once")
            return Verdict.REJECT
        cidr = cidr_holding(p.destination, self.fp.service_cidrs)
        if cidr:
            self.say(self.filter, f"no Service holds {p.destination} in the service CIDR {cidr}: dropped")
            return Verdict.DROP
        return None

    def pick(self, group: EndpointGroup, marked: bool) -> tuple[Candidate, ...]:
        shares = group.probabilities()
        hints = group.hints
        if hints is not None:
            self.say(self.dnat, f"topology: {hints.text()}")
        if group.local:
            what = "this node's endpoints"
        elif hints is not None and hints.mode is Mode.ZONE:
            what = f"the endpoints hinted for zone {hints.node.zone}"
        elif hints is not None and hints.mode is Mode.NODE:
            what = "the endpoints hinted for this node"
        else:
            what = "all usable endpoints"
        fallback = " (none is ready: the serving, terminating ones stand in)" if group.fallback else ""
        n = len(shares)
        chance = "" if n == 1 else ", each as likely" if len({p for _, p in shares}) == 1 else ""
        self.say(self.dnat, f"DNAT to one of {what}{fallback}: {n} endpoint(s){chance}")
        if group.affinity_timeout:
            t = group.affinity_timeout
            self.say(self.dnat, f"sessionAffinity ClientIP: a client that connected within {t}s goes back to its endpoint; the probabilities are a new client's")
        hairpin = {ip for pp in self.fp.ports for ip in pp.hairpin}
        src = self.packet.source
        return tuple(Candidate(e, p, marked or (e.address == src and src in hairpin)) for e, p in shares)

    def postrouting(self, candidates: tuple[Candidate, ...], marked: bool) -> None:
        where = "nat postrouting"
        if marked:
            self.say(where, "marked: masqueraded, the endpoint sees this node's address")
            return
        for c in candidates:
            if c.masquerade:
                self.say(where, f"hairpin: when {c.address} is chosen, the pod reaches itself: masqueraded, or it would drop a reply from its own address")
        if not all(c.masquerade for c in candidates):
            other = "otherwise " if any(c.masquerade for c in candidates) else ""
            self.say(where, f"{other}not marked: the endpoint sees the source address {self.packet.source}")


def trace(plan: Plan, packet: Packet) -> Trace:
    """What svcctl's rules for ``plan`` do to ``packet``: pure, and the same answer every time."""
    return _Walk(_family(plan, packet.version), packet).run()
