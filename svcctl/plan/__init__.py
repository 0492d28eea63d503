"""The plan: for each IP family, what the rules do with each Service port (svcctl.plan.model).

Every decision lives here, where it can be tested and where every back end and every command
(rules, show, trace) reads the same answer: which endpoint groups a Service port needs, where
each of its addresses and node ports leads, what is rejected, dropped or masqueraded. One small
module per concern (endpoints, dispatch, external, firewall), one function (``port_plan``)
that puts a port's parts together, one (``plan``) that does it for every port.
"""

from __future__ import annotations

from ..formats import address_order
from ..model import TrafficPolicy
from ..options import Options
from ..resolve import ResolvedPort, ResolvedService
from .dispatch import Claims, claim, node_port, of_family
from .endpoints import choose, hairpin, udp_endpoints
from .external import route
from .firewall import collapsed, firewall
from .model import (
    Action,
    Destination,
    Endpoint,
    EndpointGroup,
    ExternalRoute,
    FamilyPlan,
    FamilySettings,
    Frontend,
    MasqueradeScope,
    NodePort,
    Pick,
    Plan,
    PortPlan,
    PortRef,
    ServicePlan,
    Target,
)

__all__ = [
    "Action", "Destination", "Endpoint", "EndpointGroup", "ExternalRoute", "FamilyPlan", "FamilySettings", "Frontend", "MasqueradeScope",
    "NodePort", "Pick", "Plan", "PortPlan", "PortRef", "ServicePlan", "Target", "family_settings", "plan", "port_plan", "port_ref", "service_plan",
]

VERSIONS = (4, 6)


def port_ref(svc: ResolvedService, port: ResolvedPort) -> PortRef:
    return PortRef(svc.namespace, svc.name, port.name, port.port, port.protocol)


def port_plan(svc: ResolvedService, port: ResolvedPort, version: int, claims: Claims, settings: FamilySettings) -> PortPlan:
    """One Service port's part of one family's rules. ``svc`` has a cluster IP of this family."""
    ref = port_ref(svc, port)
    cluster_ip = of_family(svc.cluster_ips, version)[0]
    load_balancer_ips, own_external_ips = of_family(svc.load_balancer_ips, version), of_family(svc.external_ips, version)
    kinds = {ip: Frontend.LOAD_BALANCER_IP for ip in load_balancer_ips}
    kinds.update((ip, Frontend.EXTERNAL_IP) for ip in own_external_ips)  # an address both: its externalIP
    external_ips = own_external_ips + load_balancer_ips
    number = node_port(svc, port.node_port)
    has_external = bool(external_ips or number)
    choice = choose(svc, port, ref, version, has_external)

    service_ips: list[tuple[Destination, Target]] = []
    node_ports: list[tuple[NodePort, Target]] = []
    no_endpoint_ips: list[tuple[Destination, Action]] = []
    no_endpoint_node_ports: list[tuple[NodePort, Action]] = []

    # The ClusterIP: internalTrafficPolicy decides between all and local endpoints. With
    # endpoints but none local under Local policy, traffic is dropped; with no endpoints at
    # all it is rejected, so clients fail at once instead of timing out.
    itp_local = svc.internal_traffic_policy is TrafficPolicy.LOCAL
    internal = choice.node_local if itp_local else choice.cluster
    key = Destination(cluster_ip, port.protocol, port.port)
    if internal is not None:
        service_ips.append((key, internal))
    else:
        no_endpoint_ips.append((key, Action.DROP if choice.any else Action.REJECT))

    external = [d for d in (Destination(ip, port.protocol, port.port) for ip in external_ips) if claims.owns(d, svc)]
    nodeport = NodePort(port.protocol, number) if number and claims.owns(NodePort(port.protocol, number), svc) else None
    fw = firewall(svc, external, version, settings.node_ip) if has_external else ()
    ext_route: ExternalRoute | None = None
    if has_external and not choice.any:
        no_endpoint_ips += [(d, Action.REJECT) for d in external]
        if nodeport:
            no_endpoint_node_ports.append((nodeport, Action.REJECT))
    elif has_external:
        ext_route = route(svc, ref, choice, pods_known=bool(settings.cluster_cidrs))
        if ext_route.local_policy and not choice.local:
            # Outside clients have nowhere to go: dropped rather than left to time out in nat.
            # (Pods and the node are still dispatched through the route to all endpoints.)
            no_endpoint_ips += [(d, Action.DROP) for d in external]
            if nodeport:
                no_endpoint_node_ports.append((nodeport, Action.DROP))
        service_ips += [(d, ext_route) for d in external]
        if nodeport:
            node_ports.append((nodeport, ext_route))

    return PortPlan(
        port=ref,
        frontends=((key, Frontend.CLUSTER_IP), *((d, kinds[d.address]) for d in dict.fromkeys(external))),
        groups=tuple(g for g in (choice.cluster, choice.node_local) if g is not None),
        route=ext_route,
        service_ips=tuple(service_ips),
        node_ports=tuple(node_ports),
        no_endpoint_ips=tuple(no_endpoint_ips),
        no_endpoint_node_ports=tuple(no_endpoint_node_ports),
        firewall=fw,
        hairpin=hairpin(choice),
        udp_endpoints=udp_endpoints(port, choice),
    )


def family_settings(version: int, options: Options) -> FamilySettings:
    cluster_cidrs = collapsed(options.cluster_cidrs, version)
    if options.masquerade_all:
        scope = MasqueradeScope.ALL
    elif cluster_cidrs:
        scope = MasqueradeScope.OUTSIDE_CLUSTER
    else:
        scope = MasqueradeScope.NONE
    node_ip = next((ip for ip in options.node_ips if (":" in ip) == (version == 6)), "")
    return FamilySettings(
        scope, cluster_cidrs, collapsed(options.nodeport_addresses, version), collapsed(options.service_cidrs, version), node_ip
    )


def service_plan(svc: ResolvedService, version: int, claims: Claims, settings: FamilySettings) -> ServicePlan | None:
    """A Service's part of one family's rules; None for a Service without a cluster IP of this
    family, and for headless and ExternalName Services (DNS only)."""
    ips = of_family(svc.cluster_ips, version)
    if not (svc.proxied and ips):
        return None
    return ServicePlan(ips[0], tuple(port_plan(svc, port, version, claims, settings) for port in svc.ports))


def family_plan(services: list[ResolvedService], version: int, options: Options) -> tuple[FamilyPlan, tuple[str, ...]]:
    claims = claim(services, version)
    settings = family_settings(version, options)
    planned = [sp for svc in services if (sp := service_plan(svc, version, claims, settings)) is not None]
    ports = tuple(p for sp in planned for p in sp.ports)
    cluster_ips = tuple(sorted({sp.cluster_ip for sp in planned}, key=address_order))
    return FamilyPlan(
        version=version,
        masquerade=settings.masquerade,
        cluster_cidrs=settings.cluster_cidrs,
        nodeport_cidrs=settings.nodeport_cidrs,
        cluster_ips=cluster_ips,
        service_cidrs=settings.service_cidrs,
        ports=ports,
    ), claims.warnings


def plan(services: list[ResolvedService], options: Options) -> Plan:
    """The rules for these Services on this node, per IP family. ``services`` in namespace/name
    order (as resolve returns them): where two Services want one address, order decides."""
    families, warnings = [], []
    for version in VERSIONS:
        family, found = family_plan(services, version, options)
        families.append(family)
        warnings += [f"IPv{version}: {w}" for w in found]
    return Plan(tuple(families), tuple(warnings))
