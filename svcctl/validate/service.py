"""Service: ports, cluster IPs and families, ExternalName, traffic policies, session affinity and
the LoadBalancer-only fields."""

from __future__ import annotations

from .. import formats
from ..model import IPFamily, IPFamilyPolicy, Service, ServiceType, SessionAffinity, TrafficPolicy
from ..options import NodePortRange
from ..problems import Key, Path, plain, show_value
from .metadata import check_labels, check_meta
from .report import Reporter

MAX_AFFINITY_TIMEOUT = 86400
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
TOPOLOGY_MODE_ANNOTATION = "service.kubernetes.io/topology-mode"
TOPOLOGY_HINTS_ANNOTATION = "service.kubernetes.io/topology-aware-hints"  # its deprecated name
# In the order the API server lists them (PreferSameZone and PreferSameNode since 1.33).
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")
_LOAD_BALANCER_ONLY = "Forbidden: may only be used when `type` is 'LoadBalancer'"


def check_service(svc: Service, report: Reporter, node_ports: NodePortRange) -> None:
    check_meta(svc.metadata, report, Service)
    spec = svc.spec
    kind = spec.type
    if spec.selector:
        check_labels(spec.selector, ("spec", "selector"), report)

    if kind is ServiceType.EXTERNAL_NAME:
        _check_external_name(svc, report)
    else:
        _check_cluster_ips(svc, report)
    _check_service_ports(svc, report, node_ports)

    # sessionAffinity
    if spec.session_affinity is SessionAffinity.CLIENT_IP:
        timeout = spec.affinity_timeout
        if timeout is not None and not 0 < timeout <= MAX_AFFINITY_TIMEOUT:
            report.invalid(
                ("spec", "sessionAffinityConfig", "clientIP", "timeoutSeconds"), timeout,
                f"must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}",
            )
    elif spec.session_affinity_config is not None:
        report(("spec", "sessionAffinityConfig"), "Forbidden: must not be set when session affinity is None")

    # traffic policies: externalTrafficPolicy only where the Service is reachable from outside
    external = kind in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER) or (
        kind is ServiceType.CLUSTER_IP and bool(spec.external_ips)
    )
    if spec.external_traffic_policy is not None and not external:
        report.invalid(
            ("spec", "externalTrafficPolicy"), str(spec.external_traffic_policy),
            "may only be set for externally-accessible services",
        )
    if spec.health_check_node_port:
        if not (kind is ServiceType.LOAD_BALANCER and spec.external_traffic_policy is TrafficPolicy.LOCAL):
            report.invalid(
                ("spec", "healthCheckNodePort"), spec.health_check_node_port,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            )
        elif spec.health_check_node_port not in node_ports:
            report.invalid(("spec", "healthCheckNodePort"), spec.health_check_node_port, _range_message(node_ports))

    distribution = spec.traffic_distribution
    if distribution is not None and distribution not in TRAFFIC_DISTRIBUTIONS:
        choices = ", ".join(f'"{d}"' for d in TRAFFIC_DISTRIBUTIONS)
        report(("spec", "trafficDistribution"), f"Unsupported value: {show_value(distribution)}: supported values: {choices}")

    # externalIPs
    for i, ip in enumerate(spec.external_ips):
        errs = formats.non_special_ip(ip)
        if errs:
            report.invalid(("spec", "externalIPs", i), ip, errs)

    _check_topology_annotations(svc, report)
    _check_load_balancer_fields(svc, report)


def _check_topology_annotations(svc: Service, report: Reporter) -> None:
    annotations = svc.metadata.annotations
    mode, hints = annotations.get(TOPOLOGY_MODE_ANNOTATION), annotations.get(TOPOLOGY_HINTS_ANNOTATION)
    if mode is not None and hints is not None and mode != hints:
        report.invalid(
            ("metadata", "annotations", Key(TOPOLOGY_MODE_ANNOTATION)), mode,
            f"must match annotations[{TOPOLOGY_HINTS_ANNOTATION}] when both are specified",
        )


def _check_load_balancer_fields(svc: Service, report: Reporter) -> None:
    """The fields (and the annotation) that only a LoadBalancer Service may have, and the status its
    load balancer reports."""
    spec = svc.spec
    load_balancer = spec.type is ServiceType.LOAD_BALANCER
    annotation = svc.metadata.annotations.get(SOURCE_RANGES_ANNOTATION)
    # The source ranges come from the field or, when it is empty, from the older annotation: a
    # comma-separated list of CIDRs, blanks allowed around each.
    if spec.load_balancer_source_ranges:
        if not load_balancer:
            report(("spec", "loadBalancerSourceRanges"), _LOAD_BALANCER_ONLY)
        for i, value in enumerate(spec.load_balancer_source_ranges):
            errs = formats.cidr(value.strip())
            if errs:
                report.invalid(("spec", "loadBalancerSourceRanges", i), value, errs)
    elif annotation is not None:
        path: Path = ("metadata", "annotations", Key(SOURCE_RANGES_ANNOTATION))
        if not load_balancer:
            report(path, _LOAD_BALANCER_ONLY)
        for value in annotation.split(",") if annotation.strip() else ():
            errs = formats.cidr(value.strip())
            if errs:
                report.invalid(path, value.strip(), errs)
    if spec.allocate_load_balancer_node_ports is not None and not load_balancer:
        report(("spec", "allocateLoadBalancerNodePorts"), _LOAD_BALANCER_ONLY)
    if spec.load_balancer_class is not None:
        if not load_balancer:
            report(("spec", "loadBalancerClass"), _LOAD_BALANCER_ONLY)
        elif errs := formats.qualified_name(spec.load_balancer_class):
            report.invalid(("spec", "loadBalancerClass"), spec.load_balancer_class, errs)
    for i, ingress in enumerate(svc.status.load_balancer.ingress):
        path = ("status", "loadBalancer", "ingress", i)
        if ingress.ip:
            errs = formats.ip_address(ingress.ip)
            if errs:
                report.invalid((*path, "ip"), ingress.ip, errs)
        elif ingress.ip_mode is not None:
            report((*path, "ipMode"), "Forbidden: must not be set when `ip` is not set")
        if ingress.hostname:
            if formats.parse_ip(ingress.hostname) is not None:
                report.invalid((*path, "hostname"), ingress.hostname, "must be a DNS name, not an IP address")
            elif errs := formats.dns1123_subdomain(ingress.hostname):
                report.invalid((*path, "hostname"), ingress.hostname, errs)


def _range_message(node_ports: NodePortRange) -> str:
    return f"provided port is not in the valid range. The range of valid ports is {node_ports}"


def _check_external_name(svc: Service, report: Reporter) -> None:
    spec = svc.spec
    name = spec.external_name
    if not name:
        report(("spec", "externalName"), "Required value")
    else:
        # A trailing dot (a fully qualified name) is accepted.
        errs = formats.dns1123_subdomain(name[:-1] if name.endswith(".") else name)
        if errs:
            report.invalid(("spec", "externalName"), name, errs)
    if spec.cluster_ip:
        report.invalid(("spec", "clusterIP"), spec.cluster_ip, "must be empty for ExternalName services")
    if spec.cluster_ips and not spec.cluster_ip:
        report.invalid(("spec", "clusterIPs"), spec.cluster_ips[0], "must be empty for ExternalName services")
    if spec.ip_families:
        report(("spec", "ipFamilies"), "Forbidden: may not be set for ExternalName services")
    if spec.ip_family_policy is not None:
        report(("spec", "ipFamilyPolicy"), "Forbidden: may not be set for ExternalName services")


def _check_cluster_ips(svc: Service, report: Reporter) -> None:
    spec = svc.spec
    if spec.cluster_ips and spec.cluster_ip != spec.cluster_ips[0]:
        report.invalid(("spec", "clusterIPs", 0), spec.cluster_ips[0], "must be equal to clusterIP")
    families: list[IPFamily] = []
    for i, ip in enumerate(spec.cluster_ips):
        if ip == "None":
            if i > 0 or len(spec.cluster_ips) > 1:
                report.invalid(("spec", "clusterIPs", i), ip, "'None' must be the first and only value")
            if spec.type in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER):
                report.invalid(("spec", "clusterIPs", i), ip, f"may not be set to 'None' for {str(spec.type)} services")
            continue
        parsed = formats.parse_ip(ip)
        if parsed is None:
            report.invalid(("spec", "clusterIPs", i), ip, formats.ip_address(ip))
            continue
        family = IPFamily.IPV4 if parsed.version == 4 else IPFamily.IPV6
        if family in families:
            report.invalid(("spec", "clusterIPs"), ip, "may specify no more than one IP for each IP family")
        families.append(family)
    if len(spec.cluster_ips) > 2:
        report.invalid(("spec", "clusterIPs"), len(spec.cluster_ips), "may only hold up to 2 values")
    if len(spec.ip_families) > 2:
        report.invalid(("spec", "ipFamilies"), len(spec.ip_families), "may only hold up to 2 values")
    if len(set(spec.ip_families)) != len(spec.ip_families):
        report(("spec", "ipFamilies", 1), f"Duplicate value: {show_value(str(spec.ip_families[-1]))}")
    for i, (family, declared) in enumerate(zip(families, spec.ip_families)):
        if isinstance(declared, IPFamily) and family is not declared:
            report.invalid(
                ("spec", "clusterIPs", i), spec.cluster_ips[i],
                f"expected an {str(declared)} value as indicated by `ipFamilies[{i}]`",
            )
    policy = spec.ip_family_policy
    if policy is None:
        # The API server's default (initIPFamilyFields, since 1.23): SingleStack, except for a
        # headless Service without selector, which is RequireDualStack.
        selectorless_headless = spec.headless and not spec.selector
        policy = IPFamilyPolicy.REQUIRE_DUAL_STACK if selectorless_headless else IPFamilyPolicy.SINGLE_STACK
    if policy is IPFamilyPolicy.SINGLE_STACK:
        for count, what in ((len(spec.cluster_ips), "cluster IPs"), (len(spec.ip_families), "IP families")):
            if count == 2:
                report.invalid(
                    ("spec", "ipFamilyPolicy"), str(policy),
                    f"must be 'RequireDualStack' or 'PreferDualStack' when multiple {what} are specified",
                )


def _check_service_ports(svc: Service, report: Reporter, node_ports: NodePortRange) -> None:
    spec = svc.spec
    ports = spec.ports
    if not ports and not spec.headless and spec.type is not ServiceType.EXTERNAL_NAME:
        report(("spec", "ports"), "Required value")
    seen_ports: set[tuple[str, int]] = set()
    seen_node_ports: set[tuple[str, int]] = set()
    node_port_allowed = spec.type in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER)
    check_port_names([p.name for p in ports], ("spec", "ports"), report, required=len(ports) > 1)
    for i, port in enumerate(ports):
        path: Path = ("spec", "ports", i)
        errs = formats.port_number(port.port)
        if errs:
            report.invalid((*path, "port"), port.port, errs)
        key = (str(port.protocol), port.port)
        if key in seen_ports:
            report(path, f"Duplicate value: {{port: {port.port}, protocol: {plain(str(port.protocol))}}}")
        seen_ports.add(key)
        target = port.target_port
        if isinstance(target, int):
            errs = formats.port_number(target)
        else:
            errs = formats.iana_svc_name(target)
        if errs:
            report.invalid((*path, "targetPort"), target, errs)
        if port.node_port:
            if isinstance(spec.type, ServiceType) and not node_port_allowed:
                report((*path, "nodePort"), f"Forbidden: may not be used when `type` is '{str(spec.type)}'")
            elif port.node_port not in node_ports:
                report.invalid((*path, "nodePort"), port.node_port, _range_message(node_ports))
            node_key = (str(port.protocol), port.node_port)
            if node_key in seen_node_ports:
                report((*path, "nodePort"), f"Duplicate value: {port.node_port}")
            seen_node_ports.add(node_key)
        if port.app_protocol is not None:
            errs = formats.qualified_name(port.app_protocol)
            if errs:
                report.invalid((*path, "appProtocol"), port.app_protocol, errs)


def check_port_names(names: list[str], path: Path, report: Reporter, required: bool, empty_is_a_name: bool = False) -> None:
    """Port names: DNS-1123 labels, unique; ``required`` when a list holds several ports."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        where = (*path, i, "name")
        if not name and required:
            report(where, "Required value")
        elif name and (errs := formats.dns1123_label(name)):
            report.invalid(where, name, errs)
        elif (name or empty_is_a_name) and name in seen:
            report(where, f"Duplicate value: {show_value(name)}")
        seen.add(name)
