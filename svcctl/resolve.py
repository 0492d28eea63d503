"""Work out every Service port's endpoints, as kube-proxy sees them.

Where endpoints come from, in order (cli-contract.md): the EndpointSlices labelled
``kubernetes.io/service-name`` with the Service's name; else the Endpoints object of the same
name; else, for a Service with a selector, the Pods in the input that the selector matches,
following the EndpointSlice controller's rules.
"""

from __future__ import annotations

import functools
import ipaddress
import operator
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from .allocate import Allocation, allocate
from .formats import canonical_ip, ip_version
from .model import (
    AddressType,
    Endpoints,
    EndpointSlice,
    IPMode,
    Pod,
    Protocol,
    Service,
    ServicePort,
    ServiceType,
    TrafficPolicy,
)
from .options import Network, Options
from .topology import NodeTopology, controller_hints, preference
from .validate import SERVICE_NAME_LABEL, Inventory


class EndpointSource(StrEnum):
    SLICES = "EndpointSlice"
    ENDPOINTS = "Endpoints"
    PODS = "Pods"
    NONE = "none"


class Backend(NamedTuple):
    """One endpoint of one Service port. (A NamedTuple: there are 100,000s of them, and a
    frozen dataclass takes 3x longer to build.)"""

    address: str  # canonical IP text
    port: int
    node: str
    ready: bool
    serving: bool
    terminating: bool
    zone: str
    local: bool  # on this node (Options.node_name)
    # The endpoint's DNS label under a headless Service (DNS spec 2.4.1), "" for none: the
    # EndpointSlice or Endpoints hostname, or for Pods what the endpoints controller sets.
    hostname: str = ""
    # hints.forZones and hints.forNodes: where kube-proxy sends this endpoint traffic from
    # (svcctl.topology), as the EndpointSlice has them or as its controller would write them.
    zone_hints: tuple[str, ...] = ()
    node_hints: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        return ip_version(self.address)


@dataclass(frozen=True)
class ResolvedPort:
    name: str
    protocol: Protocol
    port: int
    target_port: int | str
    node_port: int  # 0: none
    backends: tuple[Backend, ...]


@dataclass(frozen=True)
class ResolvedService:
    namespace: str
    name: str
    type: ServiceType
    cluster_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    load_balancer_ips: tuple[str, ...]  # status ingress IPs, except ipMode Proxy ones
    source_ranges: tuple[Network, ...]
    external_traffic_policy: TrafficPolicy | None
    internal_traffic_policy: TrafficPolicy | None
    affinity_timeout: int | None
    headless: bool
    external_name: str
    endpoint_source: EndpointSource
    ports: tuple[ResolvedPort, ...]
    # This node, as its endpoints' hints are read against it (svcctl.topology); None when no
    # endpoint has hints, so that where the node is makes no difference to the Service.
    node: NodeTopology | None = None
    # A headless Service's endpoints whatever their ports (port 0): what its DNS names. CoreDNS
    # reads the addresses of every endpoint, and a headless Service may have no ports at all
    # (its endpoints then have none either). Empty for other Services.
    headless_endpoints: tuple[Backend, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def proxied(self) -> bool:
        """Whether the Service gets packet rules: headless and ExternalName Services are only DNS."""
        return self.type is not ServiceType.EXTERNAL_NAME and not self.headless


def resolve(inventory: Inventory, options: Options) -> list[ResolvedService]:
    """Every Service with its allocated addresses and per-port endpoints, sorted by namespace/name."""
    allocations = allocate(inventory, options)
    slices: dict[tuple[str, str], list[EndpointSlice]] = defaultdict(list)
    for e in inventory.slices:
        owner = e.obj.metadata.labels.get(SERVICE_NAME_LABEL)
        if owner:
            slices[(e.obj.metadata.namespace, owner)].append(e.obj)
    endpoints = {(e.obj.metadata.namespace, e.obj.metadata.name): e.obj for e in inventory.endpoints}
    pods: dict[str, list[Pod]] = defaultdict(list)
    for p in inventory.pods:
        pods[p.obj.metadata.namespace].append(p.obj)
    zones = {n.obj.metadata.name: n.obj.zone for n in inventory.nodes}
    out = []
    for entry in sorted(inventory.services, key=lambda e: (e.obj.metadata.namespace, e.obj.metadata.name)):
        svc = entry.obj
        key = (svc.metadata.namespace, svc.metadata.name)
        out.append(resolve_service(svc, allocations[svc.ref], slices.get(key, []), endpoints.get(key), pods[key[0]], options, zones))
    return out


def this_node(options: Options, zones: Mapping[str, str]) -> NodeTopology:
    """This node's name and zone: --node-zone, else the zone label of the Node of its name."""
    return NodeTopology(options.node_name, options.node_zone or zones.get(options.node_name, ""))


def resolve_service(
    svc: Service, alloc: Allocation, slices: Iterable[EndpointSlice], endpoints: Endpoints | None, pods: Iterable[Pod], options: Options,
    zones: Mapping[str, str] = {},
) -> ResolvedService:
    """One Service, from what its endpoints may come from: the EndpointSlices labelled with its
    name, the Endpoints object of its name, the Pods of its namespace (any order). ``zones``:
    the zone label of each Node in the input, by name."""
    slices = list(slices)
    # A headless Service's DNS names hold every endpoint, whatever its ports: read as one more
    # port, None (any port: the readers' port 0).
    headless = svc.spec.headless
    ports: list[ServicePort | None] = [*svc.spec.ports, None] if headless else list(svc.spec.ports)
    if slices:
        source, per_port = EndpointSource.SLICES, _from_slices(svc, slices, ports, options)
    elif endpoints is not None:
        source, per_port = EndpointSource.ENDPOINTS, _once(_from_endpoints(svc, endpoints, ports, options, zones))
    elif svc.spec.selector:
        # The EndpointSlice controller makes slices only for the Service's IP families, so a
        # dual-stack Pod gives a single-stack Service one endpoint. (Headless Services have
        # no allocated IPs to tell their families: every Pod IP is kept.)
        families = {ip_version(ip) for ip in alloc.cluster_ips} or {4, 6}
        source, per_port = EndpointSource.PODS, _once(_from_pods(svc, list(pods), families, ports, options, zones))
    else:
        source, per_port = EndpointSource.NONE, [[] for _ in ports]
    everything = per_port.pop() if headless else []
    hinted = any(b.zone_hints or b.node_hints for backends in per_port for b in backends)
    return _resolved(svc, alloc, source, per_port, everything, this_node(options, zones) if hinted else None)


def _once(per_port: list[list[Backend]]) -> list[list[Backend]]:
    """Each port's endpoints without repeats, in the order first found (an address may be listed
    twice in Endpoints, a Pod may match twice). The slices reader keeps each address once itself."""
    return [list(dict.fromkeys(backends)) for backends in per_port]


def _resolved(
    svc: Service, alloc: Allocation, source: EndpointSource, per_port: list[list[Backend]], everything: list[Backend], node: NodeTopology | None
) -> ResolvedService:
    spec = svc.spec
    lb_ips: tuple[str, ...] = ()
    if spec.type is ServiceType.LOAD_BALANCER:
        # ipMode Proxy: the load balancer proxies and sends traffic to the node, not to the IP,
        # so the node must not capture traffic for that IP (KEP-1860).
        lb_ips = tuple(
            canonical_ip(i.ip)
            for i in svc.status.load_balancer.ingress
            if i.ip and i.ip_mode is not IPMode.PROXY
        )
    ports = tuple(
        ResolvedPort(
            name=p.name,
            protocol=p.protocol,
            port=p.port,
            target_port=p.target_port,
            node_port=alloc.node_ports[i],
            backends=tuple(sorted(per_port[i], key=_backend_order)),
        )
        for i, p in enumerate(spec.ports)
    )
    return ResolvedService(
        namespace=svc.metadata.namespace,
        name=svc.metadata.name,
        type=spec.type,
        cluster_ips=alloc.cluster_ips,
        external_ips=tuple(canonical_ip(ip) for ip in spec.external_ips),
        load_balancer_ips=lb_ips,
        source_ranges=tuple(ipaddress.ip_network(r.strip(), strict=False) for r in spec.load_balancer_source_ranges),
        external_traffic_policy=spec.external_traffic_policy,
        internal_traffic_policy=spec.internal_traffic_policy,
        affinity_timeout=spec.affinity_timeout,
        headless=spec.headless,
        external_name=spec.external_name,
        endpoint_source=source,
        ports=ports,
        node=node,
        headless_endpoints=tuple(sorted(everything, key=_backend_order)),
    )


_backend_order = operator.itemgetter(0, 1, 2)  # address, port, node: C speed, 100,000s of them
# Backend's own __new__ is Python code taking keywords: tuple.__new__ with every field, in
# order, builds the same NamedTuple at a third of the cost.
_new_backend: Callable[[tuple[Any, ...]], Backend] = functools.partial(tuple.__new__, Backend)  # type: ignore[arg-type]


def _backend(
    ip: str, port: int, node: str | None, ready: bool, serving: bool, terminating: bool, zone: str | None,
    hostname: str, options: Options, hints: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
) -> Backend:
    """One Backend of the Endpoints and Pods readers (the slices reader, which reads the most by
    far, builds them inline the same way)."""
    node = node or ""
    return _new_backend(
        (canonical_ip(ip), port, node, ready, serving, terminating, zone or "", bool(node) and node == options.node_name, hostname, *hints)
    )


def _from_slices(svc: Service, slices: list[EndpointSlice], ports: Sequence[ServicePort | None], options: Options) -> list[list[Backend]]:
    """The endpoints of each of ``ports``, from the slices. In this reader and the two below, a
    port None stands for any port: every endpoint, whatever its ports, as port 0."""
    per_port: list[list[Backend]] = [[] for _ in ports]
    this_node = options.node_name
    # kube-proxy ignores FQDN slices: there is no address to forward to.
    ordered = [es for es in sorted(slices, key=_slice_name) if es.address_type is not AddressType.FQDN]
    for i, sp in enumerate(ports):
        seen: set[tuple[str, int]] = set()
        found = per_port[i]
        for es in ordered:
            if sp is None:
                port = 0
            else:
                # A slice port belongs to the Service port of the same name and protocol.
                match = next((p for p in es.ports if p.name == sp.name and p.protocol is sp.protocol), None)
                if match is None or match.port is None:
                    continue
                port = match.port
            # The loop of 100,000s: no call but the tuple's (see _new_backend).
            for ep in es.endpoints:
                address = ep.addresses[0]  # kube-proxy uses an endpoint's first address only
                if ":" in address:
                    address = canonical_ip(address)
                key = (address, port)
                if key in seen:
                    continue  # the same endpoint in two slices (during an update): count it once
                seen.add(key)
                node = ep.node_name
                found.append(
                    _new_backend((
                        address, port, node, ep.ready, ep.serving, ep.terminating, ep.zone, node != "" and node == this_node,
                        ep.hostname, ep.zone_hints, ep.node_hints,
                    ))
                )
    return per_port


_slice_name = operator.attrgetter("metadata.name")


def _from_endpoints(
    svc: Service, ep: Endpoints, ports: Sequence[ServicePort | None], options: Options, zones: Mapping[str, str]
) -> list[list[Backend]]:
    # For a Service with a selector, the cluster's EndpointSlices are the controller's, made
    # from the same Pods: their zones and hints are emulated. A Service without one has its
    # Endpoints mirrored into slices, with neither zones nor hints (endpointslicemirroring).
    selector = bool(svc.spec.selector)
    prefer = preference(svc) if selector else None
    per_port: list[list[Backend]] = [[] for _ in ports]
    for subset in ep.subsets:
        for i, sp in enumerate(ports):
            if sp is None:
                port = 0
            elif match := next((p for p in subset.ports if p.name == sp.name and p.protocol is sp.protocol), None):
                port = match.port
            else:
                continue
            # Endpoints know no terminating state: an address is ready, or not ready and not serving.
            for addresses, ready in ((subset.addresses, True), (subset.not_ready_addresses, False)):
                for a in addresses:
                    zone = zones.get(a.node_name, "") if selector else ""
                    hints = controller_hints(prefer, ready, zone, a.node_name)
                    per_port[i].append(_backend(a.ip, port, a.node_name, ready, ready, False, zone, a.hostname, options, hints))
    return per_port


def _from_pods(
    svc: Service, pods: list[Pod], families: set[int], ports: Sequence[ServicePort | None], options: Options, zones: Mapping[str, str]
) -> list[list[Backend]]:
    """The EndpointSlice controller's view of the Pods a selector matches."""
    selector = svc.spec.selector or {}
    publish = svc.spec.publish_not_ready_addresses
    prefer = preference(svc)
    per_port: list[list[Backend]] = [[] for _ in ports]
    for pod in pods:
        labels = pod.metadata.labels
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        # Pods without an IP and finished Pods never become endpoints.
        if not pod.ips or pod.status.phase in ("Succeeded", "Failed"):
            continue
        serving = pod.ready
        terminating = pod.metadata.deletion_timestamp is not None
        # "ready" is never true for a terminating Pod, unless publishNotReadyAddresses says so.
        ready = publish or (serving and not terminating)
        # The controller names the endpoint only when the Pod asks for this Service as its
        # subdomain (ShouldSetHostname; the namespace is the same by construction).
        hostname = pod.spec.hostname if pod.spec.subdomain == svc.metadata.name else ""
        # The endpoint's zone is its Node's zone label (a Node missing from the input: none).
        node = pod.spec.node_name or ""
        zone = zones.get(node, "")
        hints = controller_hints(prefer, ready, zone, node)
        for i, sp in enumerate(ports):
            target = 0 if sp is None else _pod_port(pod, sp)
            if target is None:
                continue  # a named targetPort this Pod does not have: not an endpoint of this port
            for ip in pod.ips:
                if ip_version(ip) not in families:
                    continue
                per_port[i].append(_backend(ip, target, node, ready, serving, terminating, zone, hostname, options, hints))
    return per_port


def _pod_port(pod: Pod, sp: ServicePort) -> int | None:
    if isinstance(sp.target_port, int):
        return sp.target_port
    for container in pod.spec.containers:
        for cp in container.ports:
            if cp.name == sp.target_port and cp.protocol is sp.protocol:
                return cp.container_port
    return None
