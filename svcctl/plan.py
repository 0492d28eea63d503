"""The ruleset as data: for each IP family, the table svcctl owns, with its maps, sets and chains.

Every decision lives here, where it can be tested: which chains a Service port needs, what each
map entry points at, the probabilities of the endpoint cascade, names, order. Renderers (the
nftables templates) only write this structure out. docs/nft-layout.md explains the layout and the
measurements behind it; the short version:

- Services are dispatched by named verdict maps keyed ``daddr . l4proto . dport`` (ClusterIPs,
  externalIPs, LoadBalancer IPs) and ``l4proto . dport`` (NodePorts): one lookup per packet.
- Each Service port has one chain holding a probability cascade over its endpoints: rule i of N
  matches with probability 1/(N-i), the last one always, so every endpoint gets exactly 1/N.
  Per-endpoint chains and anonymous maps make the kernel's load time grow quadratically
  (kernel-notes.md); this layout loads 10,000 Services x 10 endpoints in under 3 s.
- Masquerading is decided by setting a mark bit; the postrouting chain masquerades marked packets.
- Rejects for ports without endpoints happen in filter chains, since nat chains cannot reject.

All text that reaches the ruleset comes from validated input (canonical IP addresses, port
numbers, protocol names, DNS-label names) or is generated here.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from typing import Iterable, NamedTuple

from .formats import ip_version, packed_ip
from .model import Protocol, ServiceType, TrafficPolicy
from .options import Network, Options
from .resolve import Backend, ResolvedPort, ResolvedService

MASQUERADE_MARK = 0x4000  # the bit kube-proxy uses too; set by chains, consumed by nat-postrouting
NAME_MAX = 255  # nft refuses longer chain and set names (measured: 256 gives ERANGE)
COMMENT_MAX = 128  # and longer comments ("comment too long, 128 characters maximum allowed")


class Family(StrEnum):
    """An nftables table family svcctl writes: one table for IPv4, one for IPv6."""

    IP = "ip"
    IP6 = "ip6"

    @property
    def version(self) -> int:
        return 4 if self is Family.IP else 6

    @property
    def addr_type(self) -> str:
        return "ipv4_addr" if self is Family.IP else "ipv6_addr"

    @property
    def loopback(self) -> str:
        return "127.0.0.0/8" if self is Family.IP else "::1"

    def endpoint(self, address: str, port: int) -> str:
        """A DNAT target: ``10.0.0.1:80`` or ``[fd00::1]:80``."""
        return f"{address}:{port}" if self is Family.IP else f"[{address}]:{port}"


class MasqueradeScope(StrEnum):
    """Which traffic to a ClusterIP is masqueraded (besides external and hairpin traffic)."""

    NONE = "none"  # no --cluster-cidr of this family, no --masquerade-all
    OUTSIDE_CLUSTER = "outside-cluster"  # sources outside --cluster-cidr
    ALL = "all"  # --masquerade-all


class VerdictKind(StrEnum):
    GOTO = "goto"
    DROP = "drop"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    chain: str = ""

    @staticmethod
    def goto(chain: str) -> "Verdict":
        return Verdict(VerdictKind.GOTO, chain)


REJECT_CHAIN = "reject-chain"
# Prefixes of the objects the plan names per Service port (object_name). Everything else in a
# table belongs to its frame: the hook chains and the static sets.
SVC, LOCAL, EXT, AFFINITY = "svc", "local", "ext", "aff"
PORT_CHAIN_KINDS = (SVC, LOCAL, EXT)
REJECT = Verdict.goto(REJECT_CHAIN)
DROP = Verdict(VerdictKind.DROP)


class Element(NamedTuple):
    """One element of a named set or map: a key (its parts joined by ``.``) and, in a map, a
    verdict. (NamedTuples for the objects counted in 100,000s: cheaper than frozen dataclasses.)"""

    key: tuple[str, ...]
    verdict: Verdict | None = None


@dataclass(frozen=True)
class NamedSet:
    """A named set or verdict map. ``dynamic`` sets are filled by the packet path (session
    affinity) and are never flushed by an apply; every other set is rewritten in full."""

    name: str
    key_type: tuple[str, ...]
    comment: str
    is_map: bool = False
    interval: bool = False
    dynamic: bool = False
    elements: tuple[Element, ...] = ()


class Pick(NamedTuple):
    """One rule of an endpoint cascade: DNAT to ``target`` if ``numgen random mod modulus`` is 0
    (always, when ``modulus`` is None). ``affinity`` names the endpoint's affinity set."""

    target: str  # address:port as nft writes a DNAT target
    modulus: int | None
    affinity: str | None


@dataclass(frozen=True)
class EndpointChain:
    """``svc-`` (all usable endpoints) or ``local-`` (this node's) chain of one Service port."""

    name: str
    comment: str
    protocol: str  # nft name: tcp, udp, sctp
    picks: tuple[Pick, ...]
    affinity_timeout: int | None  # seconds; with it, a client goes back to its endpoint first


class _Route(NamedTuple):
    mark_all: bool
    pods_to: str
    node_to: str
    then_to: str


@dataclass(frozen=True)
class ExternalChain:
    """``ext-`` chain: where traffic to a NodePort, externalIP or LoadBalancer IP goes.

    externalTrafficPolicy Cluster: mark for masquerade, then all endpoints. Local: pods (from
    the cluster CIDR) and the node itself still reach all endpoints, as in kube-proxy; other
    clients only this node's endpoints, with their source address kept."""

    name: str
    comment: str
    mark_all: bool  # mark every packet for masquerade first
    pods_to: str  # chain for sources in @cluster-cidrs, or ""
    node_to: str  # chain for traffic from the node itself (marked), or ""
    then_to: str  # chain for everything else, or "" (dropped by the filter check)


@dataclass(frozen=True)
class Table:
    family: Family
    name: str
    masquerade: MasqueradeScope
    nodeport_cidrs: bool  # NodePorts only on local addresses inside @nodeport-cidrs
    sets: tuple[NamedSet, ...]
    endpoint_chains: tuple[EndpointChain, ...]
    external_chains: tuple[ExternalChain, ...]

    @property
    def static_sets(self) -> tuple[NamedSet, ...]:
        return tuple(s for s in self.sets if not s.dynamic)


@dataclass(frozen=True)
class Ruleset:
    tables: tuple[Table, ...]
    warnings: tuple[str, ...] = ()  # what the input asks for that the ruleset cannot do


# ---- names --------------------------------------------------------------------------------


def _hash8(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:5]).decode()  # 40 bits: 8 characters


def port_id(svc: ResolvedService, port: ResolvedPort) -> str:
    """``ns/name/proto/portname`` (or the port number when the port has no name)."""
    return f"{svc.namespace}/{svc.name}/{port.protocol.value.lower()}/{port.name or port.port}"


def object_name(kind: str, ident: str, content: object = None) -> str:
    """``<kind>-<HASH8>-<ident>``: readable, unique by the hash, capped at nft's name limit.
    The hash covers ``ident`` and, for chains, their ``content``. Every part of ``ident`` is a
    DNS label, a protocol name, a number or an IP address (with ':' written as '.', which nft
    refuses in set names)."""
    readable = ident.replace(":", ".")
    name = f"{kind}-{_hash8(ident if content is None else f'{ident} {content!r}')}-{readable}"
    return name[:NAME_MAX]


def _comment(svc: ResolvedService, port: ResolvedPort, what: str = "") -> str:
    """``ns/name:port/proto what``, within nft's limit: the Service part is shortened if needed."""
    label = f"{svc.namespace}/{svc.name}:{port.name or port.port}/{port.protocol.value.lower()}"
    room = COMMENT_MAX - (len(what) + 1 if what else 0)
    if len(label) > room:
        label = label[: room - 3] + "..."
    return f"{label} {what}".strip()


# ---- building -----------------------------------------------------------------------------


def cascade(backends: Iterable[Backend], family: Family, affinity: dict[Backend, str] | None) -> tuple[Pick, ...]:
    """Rule i of N matches with probability 1/(N-i) among the packets that reach it, the last
    rule always: each endpoint is chosen with probability exactly 1/N."""
    ordered = list(backends)
    n = len(ordered)
    return tuple(
        Pick(
            target=family.endpoint(b.address, b.port),
            modulus=(n - i) if i < n - 1 else None,
            affinity=affinity.get(b) if affinity else None,
        )
        for i, b in enumerate(ordered)
    )


class _TableBuilder:
    def __init__(self, family: Family, options: Options):
        self.family = family
        self.options = options
        self.service_ips: list[Element] = []
        self.nodeports: list[Element] = []
        self.no_endpoint_ips: list[Element] = []
        self.no_endpoint_nodeports: list[Element] = []
        self.cluster_ips: list[Element] = []
        self.firewall_ips: list[Element] = []
        self.firewall_allow: list[Element] = []
        self.hairpin: set[str] = set()
        self.udp_endpoints: set[tuple[str, str]] = set()
        self.affinity_sets: list[NamedSet] = []
        self.endpoint_chains: list[EndpointChain] = []
        self.external_chains: list[ExternalChain] = []
        self.cluster_cidrs = _collapsed(options.cluster_cidrs, family.version)
        # Which Service port holds each key of service-ips/no-endpoint-services and of the
        # NodePort maps. The API server lets two Services share an externalIP (or an LB IP) and
        # port, even one that is another Service's ClusterIP, but nft refuses a map key added
        # twice ("File exists"). ClusterIPs come first (claim_cluster_ips): an externalIP must not
        # take over another Service's ClusterIP (CVE-2020-8554); among external addresses the
        # first Service port in namespace/name order keeps the key. Each loser is a warning.
        self.claimed: dict[tuple[str, ...], str] = {}
        self.warnings: list[str] = []

    def claim_cluster_ips(self, services: Iterable[ResolvedService]) -> None:
        for svc in services:
            cluster_ips = self._of_family(svc.cluster_ips)
            if svc.proxied and cluster_ips:
                for port in svc.ports:
                    self.claimed.setdefault((cluster_ips[0], port.protocol.value.lower(), str(port.port)), svc.ref)

    def _claim(self, key: tuple[str, ...], svc: ResolvedService, what: str) -> bool:
        owner = self.claimed.setdefault(key, svc.ref)
        if owner != svc.ref:
            self.warnings.append(
                f"Service {svc.ref}: {what} {' '.join(key)} is already Service {owner}'s: no rule for it here"
            )
        return owner == svc.ref

    def _of_family(self, addresses: Iterable[str]) -> list[str]:
        return [a for a in addresses if ip_version(a) == self.family.version]

    def add_service(self, svc: ResolvedService) -> None:
        cluster_ips = self._of_family(svc.cluster_ips)
        if not svc.proxied or not cluster_ips:
            return  # headless, ExternalName, or not of this family: no rules
        for port in svc.ports:
            self._add_port(svc, port, cluster_ips[0])

    def _add_port(self, svc: ResolvedService, port: ResolvedPort, cluster_ip: str) -> None:
        family, version = self.family, self.family.version
        proto = port.protocol.value.lower()
        ident = port_id(svc, port)
        all_eps = port.usable(local_only=False, version=version)
        local_eps = port.usable(local_only=True, version=version)
        itp_local = svc.internal_traffic_policy is TrafficPolicy.LOCAL
        etp_local = svc.external_traffic_policy is TrafficPolicy.LOCAL
        external_ips = self._of_family(svc.external_ips) + self._of_family(svc.load_balancer_ips)
        node_port = port.node_port if svc.type in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER) else 0
        has_external = bool(external_ips or node_port)

        needs_svc = bool(all_eps) and (not itp_local or has_external)
        needs_local = bool(local_eps) and (itp_local or (etp_local and has_external))
        # The endpoints the rendered chains can DNAT to. local_eps is not always a subset of
        # all_eps: with remote endpoints ready and the local ones only serving+terminating, the
        # local chain falls back to those (kube-proxy does the same per locality).
        used = list(all_eps if needs_svc else ())
        used += [b for b in (local_eps if needs_local else ()) if b not in used]

        affinity: dict[Backend, str] = {}
        if svc.affinity_timeout:
            for b in used:  # one set per endpoint a chain refers to: no unused sets, none missing
                name = object_name(AFFINITY, f"{ident}/{b.address}-{b.port}")
                affinity[b] = name
                self.affinity_sets.append(
                    NamedSet(name, (family.addr_type,), _comment(svc, port, f"affinity to {family.endpoint(b.address, b.port)}"), dynamic=True)
                )
        svc_picks = cascade(all_eps, family, affinity) if needs_svc else ()
        local_picks = cascade(local_eps, family, affinity) if needs_local else ()
        # A chain's name carries a hash of its rules: when the rules change, so does the name,
        # and an apply can tell what changed from the live chain names alone (svcctl.sync).
        # The rules follow from the protocol, the affinity timeout and the targets in order (the
        # moduli from their count, the affinity sets from ident and target): that is the content.
        svc_chain = object_name(SVC, ident, f"{proto} {svc.affinity_timeout} {' '.join(p.target for p in svc_picks)}")
        local_chain = object_name(LOCAL, ident, f"{proto} {svc.affinity_timeout} {' '.join(p.target for p in local_picks)}")
        if needs_svc:
            self.endpoint_chains.append(EndpointChain(svc_chain, _comment(svc, port), proto, svc_picks, svc.affinity_timeout))
        if needs_local:
            self.endpoint_chains.append(
                EndpointChain(local_chain, _comment(svc, port, "(local endpoints)"), proto, local_picks, svc.affinity_timeout)
            )
        self.hairpin.update(b.address for b in used if b.local or not b.node)
        if port.protocol is Protocol.UDP:
            self.udp_endpoints.update((b.address, str(b.port)) for b in used)

        # The ClusterIP: internalTrafficPolicy decides between all and local endpoints. With
        # endpoints but none local under Local policy, traffic is dropped; with no endpoints at
        # all it is rejected, so clients fail at once instead of timing out.
        key = (cluster_ip, proto, str(port.port))
        internal = local_chain if itp_local else svc_chain
        if (local_eps if itp_local else all_eps):
            self.service_ips.append(Element(key, Verdict.goto(internal)))
            self.cluster_ips.append(Element(key))
        else:
            self.no_endpoint_ips.append(Element(key, DROP if all_eps else REJECT))

        if not has_external:
            return
        external_keys = [k for k in ((ip, proto, str(port.port)) for ip in external_ips) if self._claim(k, svc, "address")]
        nodeport_key = (proto, str(node_port)) if node_port and self._claim((proto, str(node_port)), svc, "NodePort") else None
        # Collapsed: overlapping intervals in one set are refused ("conflicting intervals").
        ranges = _collapsed(svc.source_ranges, version) if svc.source_ranges else []
        # As kube-proxy: only the ranges of this family count; none of this family, or a /0
        # among them, means "allow any" (no firewall), not "allow nobody".
        if ranges and not any(r.endswith("/0") for r in ranges):
            for ip in dict.fromkeys(self._of_family(svc.load_balancer_ips)):  # each IP once
                key = (ip, proto, str(port.port))
                if key in external_keys:  # not if another Service's port holds this IP and port
                    self.firewall_ips.append(Element(key))
                    self.firewall_allow.extend(Element((*key, r)) for r in ranges)
        if not all_eps:
            self.no_endpoint_ips.extend(Element(k, REJECT) for k in external_keys)
            if nodeport_key:
                self.no_endpoint_nodeports.append(Element(nodeport_key, REJECT))
            return
        if etp_local:
            route = _Route(
                mark_all=self.options.masquerade_all,  # --masquerade-all: all service traffic, as the contract says
                pods_to=svc_chain if self.cluster_cidrs else "",
                node_to=svc_chain,
                then_to=local_chain if local_eps else "",
            )
            comment = _comment(svc, port, "(external, local endpoints)")
            if not local_eps:  # external clients have nowhere to go: drop rather than time out in nat
                self.no_endpoint_ips.extend(Element(k, DROP) for k in external_keys)
                if nodeport_key:
                    self.no_endpoint_nodeports.append(Element(nodeport_key, DROP))
        else:
            route, comment = _Route(mark_all=True, pods_to="", node_to="", then_to=svc_chain), _comment(svc, port, "(external)")
        ext_chain = object_name(EXT, ident, tuple(route))
        self.external_chains.append(ExternalChain(ext_chain, comment, **route._asdict()))
        self.service_ips.extend(Element(k, Verdict.goto(ext_chain)) for k in external_keys)
        if nodeport_key:
            self.nodeports.append(Element(nodeport_key, Verdict.goto(ext_chain)))

    def build(self, table_name: str) -> Table:
        a = self.family.addr_type
        ip_proto_port = (a, "inet_proto", "inet_service")
        nodeport_cidrs = _collapsed(self.options.nodeport_addresses, self.family.version)
        if self.options.masquerade_all:
            scope = MasqueradeScope.ALL
        elif self.cluster_cidrs:
            scope = MasqueradeScope.OUTSIDE_CLUSTER
        else:
            scope = MasqueradeScope.NONE
        sets = (
            *sorted(self.affinity_sets, key=lambda s: s.name),
            NamedSet("service-ips", ip_proto_port, "ClusterIPs, externalIPs and LoadBalancer IPs", is_map=True, elements=tuple(self.service_ips)),
            NamedSet("service-nodeports", ("inet_proto", "inet_service"), "NodePorts", is_map=True, elements=tuple(self.nodeports)),
            NamedSet("no-endpoint-services", ip_proto_port, "service IPs without usable endpoints: reject or drop", is_map=True, elements=tuple(self.no_endpoint_ips)),
            NamedSet("no-endpoint-nodeports", ("inet_proto", "inet_service"), "NodePorts without usable endpoints: reject or drop", is_map=True, elements=tuple(self.no_endpoint_nodeports)),
            NamedSet("cluster-ips", ip_proto_port, "ClusterIP ports with endpoints: masquerade traffic to them from outside the cluster", elements=tuple(self.cluster_ips)),
            NamedSet("firewall-ips", ip_proto_port, "LoadBalancer IP ports with loadBalancerSourceRanges", elements=tuple(self.firewall_ips)),
            NamedSet("firewall-allow", (*ip_proto_port, a), "LoadBalancer IP ports and the source ranges allowed to reach them", interval=True, elements=tuple(self.firewall_allow)),
            NamedSet("hairpin", (a, a), "endpoint . endpoint: a local endpoint reaching itself through its Service", elements=tuple(Element((ip, ip)) for ip in sorted(self.hairpin, key=_address_order))),
            NamedSet("udp-endpoints", (a, "inet_service"), "UDP endpoints: an apply that removes one deletes the conntrack entries to it", elements=tuple(Element(k) for k in sorted(self.udp_endpoints, key=lambda k: (_address_order(k[0]), int(k[1]))))),
            NamedSet("cluster-cidrs", (a,), "--cluster-cidr", interval=True, elements=tuple(Element((c,)) for c in self.cluster_cidrs)),
            NamedSet("nodeport-cidrs", (a,), "--nodeport-addresses", interval=True, elements=tuple(Element((c,)) for c in nodeport_cidrs)),
        )
        return Table(
            family=self.family,
            name=table_name,
            masquerade=scope,
            nodeport_cidrs=bool(nodeport_cidrs),
            sets=sets,
            endpoint_chains=tuple(self.endpoint_chains),
            external_chains=tuple(self.external_chains),
        )


def _collapsed(networks: Iterable[Network], version: int) -> list[str]:
    """The networks of one IP family, merged where they overlap or touch, in address order:
    nft refuses overlapping elements in an interval set ("conflicting intervals specified")."""
    # A single address is written without its /32 (/128), as nft lists it, so that the elements
    # an apply reads back compare equal to the planned ones.
    return [
        str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n)
        for n in ipaddress.collapse_addresses(n for n in networks if n.version == version)
    ]


def _address_order(address: str) -> bytes:
    return packed_ip(address)  # type: ignore[return-value]  # valid: checked by validate


def plan(services: list[ResolvedService], options: Options) -> Ruleset:
    """The whole ruleset for these Services on this node: an ``ip`` and an ``ip6`` table."""
    tables, warnings = [], []
    for family in (Family.IP, Family.IP6):
        builder = _TableBuilder(family, options)
        builder.claim_cluster_ips(services)
        for svc in services:
            builder.add_service(svc)
        tables.append(builder.build(options.table))
        warnings += [f"{family.value}: {w}" for w in builder.warnings]
    return Ruleset(tuple(tables), tuple(warnings))
