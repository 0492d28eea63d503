"""Turn raw manifests into validated, typed objects, as the API server would accept them.

Every problem in every object is collected before anything fails, so a user sees the whole list
at once. The rules follow the API server's validation (pkg/apis/core/validation and
pkg/apis/discovery/validation); messages are worded as it words them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Callable, Generic, Iterable, NamedTuple, Sequence, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from . import formats
from .load import Origin, RawObject
from .model import (
    KINDS,
    ObjectMeta,
    OneOf,
    AddressType,
    Endpoints,
    EndpointSlice,
    IPFamily,
    IPFamilyPolicy,
    Pod,
    Service,
    ServiceType,
    SessionAffinity,
    TrafficPolicy,
)
from .options import NodePortRange
from .problems import InvalidInput, Path, Problem, show_value

T = TypeVar("T")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MAX_AFFINITY_TIMEOUT = 86400


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A validated object and where it came from."""

    obj: T
    origin: Origin


@dataclass
class Inventory:
    """Every object of the kinds svcctl uses, validated; and what was skipped."""

    services: list[Entry[Service]] = field(default_factory=list)
    endpoints: list[Entry[Endpoints]] = field(default_factory=list)
    slices: list[Entry[EndpointSlice]] = field(default_factory=list)
    pods: list[Entry[Pod]] = field(default_factory=list)
    skipped: list[tuple[str, Origin]] = field(default_factory=list)  # "apiVersion/kind name", origin


def validate(raw: Iterable[RawObject], node_ports: NodePortRange = NodePortRange()) -> Inventory:
    """Type-check and validate every object. Raises InvalidInput with every problem found."""
    inventory = Inventory()
    problems: list[Problem] = []
    buckets: dict[type, list[Any]] = {
        Service: inventory.services,
        Endpoints: inventory.endpoints,
        EndpointSlice: inventory.slices,
        Pod: inventory.pods,
    }
    for item in raw:
        entry = check_object(item, problems, inventory.skipped, node_ports)
        if entry is not None:
            buckets[type(entry.obj)].append(entry)
    _check_across(inventory, problems)
    if problems:
        raise InvalidInput(problems)
    return inventory


def check_object(
    item: RawObject, problems: list[Problem], skipped: list[tuple[str, Origin]], node_ports: NodePortRange = NodePortRange()
) -> Entry[Any] | None:
    """Type-check and validate one object on its own (what the API server checks before it looks
    at other objects): the Entry if it is valid, else None with its problems added to
    ``problems``; an object of a kind svcctl does not use is added to ``skipped``."""
    entry = _typed(item, problems, skipped)
    if entry is None:
        return None
    report = _Reporter(entry, problems)
    # Values outside an enum are reported, and the other rules still run (they only
    # compare such fields with enum members and print them with str()): all at once.
    _unsupported_values(entry.obj, (), report)
    _RULES[type(entry.obj)](entry.obj, report, node_ports)
    return entry if report.clean else None


class _Reporter:
    """Collects the problems of one object."""

    def __init__(self, entry: Entry[Any], problems: list[Problem]):
        self.entry = entry
        self.problems = problems
        self.clean = True

    def __call__(self, path: Path, messages: str | list[str]) -> None:
        for message in [messages] if isinstance(messages, str) else messages:
            self.clean = False
            obj = self.entry.obj
            self.problems.append(Problem(message, path, self.entry.origin, obj.kind, obj.ref))

    def invalid(self, path: Path, value: Any, messages: str | list[str]) -> None:
        shown = f'"{value}"' if isinstance(value, str) else str(value)
        self(path, [f"Invalid value: {shown}: {m}" for m in ([messages] if isinstance(messages, str) else messages)])


# ---- typing -------------------------------------------------------------------------------


def _typed(item: RawObject, problems: list[Problem], skipped: list[tuple[str, Origin]]) -> Entry[Any] | None:
    data, origin = item.data, item.origin
    api_version, kind = data.get("apiVersion"), data.get("kind")
    for field, value in (("apiVersion", api_version), ("kind", kind)):
        if value is not None and not isinstance(value, str):
            problems.append(Problem(f"Invalid value: {show_value(value)}: must be a string", (field,), origin))
            return None
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    ref = f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"
    model = KINDS.get((api_version, kind))  # type: ignore[arg-type]
    if model is None:
        if not api_version and kind in {k for _, k in KINDS}:
            problems.append(Problem("Required value", ("apiVersion",), origin, str(kind), ref))
        elif kind == "EndpointSlice" and api_version == "discovery.k8s.io/v1beta1":
            problems.append(
                Problem(
                    'Unsupported value: "discovery.k8s.io/v1beta1": no longer served since Kubernetes 1.25; '
                    'use "discovery.k8s.io/v1"',
                    ("apiVersion",), origin, kind, ref,
                )
            )
        elif not kind:
            problems.append(Problem("Required value", ("kind",), origin))
        elif _same_group_other_version(api_version, kind):
            # e.g. `v2` Service: kubectl would fail ("no matches for kind"). A Service of another
            # API group (Knative's serving.knative.dev/v1) is another kind, and skipped.
            wanted = next(v for v, k in KINDS if k == kind)
            problems.append(Problem(f'Unsupported value: "{api_version}": {kind} is served as "{wanted}"', ("apiVersion",), origin, kind, ref))
        else:
            skipped.append((f"{api_version}/{kind} {ref}", origin))
        return None
    try:
        entry = Entry(model.model_validate(data), origin)
    except ValidationError as err:
        for e in _dedupe(err.errors()):
            if e["type"] == "nested":  # many problems found by svcctl.bulk in one list
                for subpath, message in e["ctx"]["errors"]:
                    problems.append(Problem(message, (*e["loc"], *subpath), origin, kind, ref))
            else:
                problems.append(_pydantic_problem(e, origin, kind, ref))
        _check_meta_alone(model, data, origin, problems)
        return None
    return entry


class _Named(NamedTuple):
    kind: str
    ref: str


def _check_meta_alone(model: type[Any], data: dict[str, Any], origin: Origin, problems: list[Problem]) -> None:
    """When an object does not type-check, its metadata may still: check the name, namespace and
    labels too, so that these problems come in the same run as the type errors."""
    meta_model = model.model_fields["metadata"].annotation
    raw = data.get("metadata")
    try:
        meta = meta_model.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError:
        return  # its problems are among the type errors already reported
    named = _Named(data["kind"], f"{meta.namespace}/{meta.name}")
    _check_meta(meta, _Reporter(Entry(named, origin), problems), _NAME_RULE[model])


def _unsupported_values(obj: BaseModel, path: Path, report: "_Reporter") -> None:
    """Report every enum-typed field holding a value outside its enum (see model.OneOf)."""
    for name, alias, shape, enum in _enum_fields(type(obj)):
        value = getattr(obj, name)
        if value is None:
            continue
        items = list(enumerate(value)) if shape.endswith("s") else [(None, value)]
        for i, item in items:
            where = (*path, alias) if i is None else (*path, alias, i)
            if shape.startswith("model"):
                _unsupported_values(item, where, report)
            elif not isinstance(item, enum):
                choices = ", ".join(f'"{v}"' for v in sorted(enum._value2member_map_))
                report(where, f'Unsupported value: "{item}": supported values: {choices}')


@lru_cache(maxsize=None)
def _enum_fields(cls: type[BaseModel]) -> tuple[tuple[str, str, str, Any], ...]:
    """The fields of a model class that hold enum values or models that do: (name, alias,
    shape: value/values/model/models, enum class or model class)."""
    out = []
    for name, info in cls.model_fields.items():
        alias = info.alias or name
        marker = next((m for m in info.metadata if isinstance(m, OneOf)), None)
        if marker:
            out.append((name, alias, "value", marker.enum))
            continue
        plural = get_origin(info.annotation) in (list, tuple)  # else a single value, maybe None
        for arg in _flatten(info.annotation):
            if isinstance(arg, OneOf):
                out.append((name, alias, "values" if plural else "value", arg.enum))
            elif isinstance(arg, type) and issubclass(arg, BaseModel) and _enum_fields(arg):
                out.append((name, alias, "models" if plural else "model", arg))
    return tuple(out)


def _flatten(annotation: Any) -> list[Any]:
    """Every type and Annotated metadata inside an annotation (list[...], X | None, ...)."""
    if get_origin(annotation) is Annotated:
        return [*annotation.__metadata__, *_flatten(annotation.__origin__)]
    found = [annotation]
    for arg in get_args(annotation):
        found += _flatten(arg)
    return found


def _same_group_other_version(api_version: Any, kind: Any) -> bool:
    """An apiVersion of the group svcctl reads this kind from, but not the version it reads."""
    if not isinstance(api_version, str):
        return False
    group = api_version.rpartition("/")[0]
    return any(k == kind and v.rpartition("/")[0] == group for v, k in KINDS)


def _dedupe(errors: list[Any]) -> list[Any]:
    seen, out = set(), []
    for e in errors:
        key = tuple(e["loc"])
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def _pydantic_problem(error: Any, origin: Origin, kind: str, ref: str) -> Problem:
    path = tuple(p for p in error["loc"] if isinstance(p, int) or not p.startswith(("function-", "json-or-python")))
    kind_of_error, value = error["type"], error.get("input")
    if kind_of_error == "missing":
        message = "Required value"
    elif kind_of_error == "extra_forbidden":
        message = "unknown field (not part of this kind's schema)"
    elif kind_of_error in ("enum", "literal_error"):
        expected = error.get("ctx", {}).get("expected", "")
        choices = ", ".join(sorted(s.strip() for s in expected.replace(" or ", ",").split(",") if s.strip()))
        message = f"Unsupported value: {show_value(value)}: supported values: {choices.replace(chr(39), chr(34))}"
    else:
        want = {
            "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
            "string_type": "a string", "bool_type": "a boolean", "dict_type": "an object",
            "model_type": "an object", "model_attributes_type": "an object", "list_type": "a list",
        }.get(kind_of_error)
        message = f"Invalid value: {show_value(value)}: must be {want}" if want else f"Invalid value: {show_value(value)}: {error['msg']}"
    return Problem(message, path, origin, kind, ref)


# ---- metadata -----------------------------------------------------------------------------

# A Service's name becomes a DNS label (<name>.<namespace>.svc); other objects' names are subdomains.
_NAME_RULE: dict[type, Callable[[str], Sequence[str]]] = {
    Service: formats.dns1035_label,
    Endpoints: formats.dns1123_subdomain,
    EndpointSlice: formats.dns1123_subdomain,
    Pod: formats.dns1123_subdomain,
}


def _check_meta(meta: ObjectMeta, report: _Reporter, name_check: Callable[[str], Sequence[str]]) -> None:
    if not meta.name:
        report(("metadata", "name"), "Required value: name or generateName is required")
    else:
        errs = name_check(meta.name)
        if errs:
            report.invalid(("metadata", "name"), meta.name, errs)
    errs = formats.dns1123_label(meta.namespace)
    if errs:
        report.invalid(("metadata", "namespace"), meta.namespace, errs)
    _check_labels(meta.labels, ("metadata", "labels"), report)


def _check_labels(labels: dict[str, str], path: Path, report: _Reporter) -> None:
    for key, value in labels.items():
        errs = formats.qualified_name(key)
        if errs:
            report.invalid(path, key, errs)
        errs = formats.label_value(value)
        if errs:
            report.invalid((*path, key), value, errs)


# ---- Service ------------------------------------------------------------------------------


def _check_service(svc: Service, report: _Reporter, node_ports: NodePortRange) -> None:
    _check_meta(svc.metadata, report, _NAME_RULE[Service])
    spec = svc.spec
    kind = spec.type
    if spec.selector:
        _check_labels(spec.selector, ("spec", "selector"), report)

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

    # externalIPs
    for i, ip in enumerate(spec.external_ips):
        errs = formats.non_special_ip(ip)
        if errs:
            report.invalid(("spec", "externalIPs", i), ip, errs)

    # LoadBalancer-only fields
    if spec.load_balancer_source_ranges and kind is not ServiceType.LOAD_BALANCER:
        report(("spec", "loadBalancerSourceRanges"), "Forbidden: may only be used when `type` is 'LoadBalancer'")
    for i, value in enumerate(spec.load_balancer_source_ranges):
        errs = formats.cidr(value.strip())
        if errs:
            report.invalid(("spec", "loadBalancerSourceRanges", i), value, errs)
    if spec.allocate_load_balancer_node_ports is not None and kind is not ServiceType.LOAD_BALANCER:
        report(("spec", "allocateLoadBalancerNodePorts"), "Forbidden: may only be used when `type` is 'LoadBalancer'")
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


def _check_external_name(svc: Service, report: _Reporter) -> None:
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


def _check_cluster_ips(svc: Service, report: _Reporter) -> None:
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
        report(("spec", "ipFamilies", 1), f'Duplicate value: "{str(spec.ip_families[-1])}"')
    for i, (family, declared) in enumerate(zip(families, spec.ip_families)):
        if family is not declared:
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
        if len(spec.cluster_ips) == 2:
            report.invalid(
                ("spec", "ipFamilyPolicy"), str(policy),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            )
        if len(spec.ip_families) == 2:
            report.invalid(
                ("spec", "ipFamilyPolicy"), str(policy),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            )


def _check_service_ports(svc: Service, report: _Reporter, node_ports: NodePortRange) -> None:
    spec = svc.spec
    ports = spec.ports
    if not ports and not spec.headless and spec.type is not ServiceType.EXTERNAL_NAME:
        report(("spec", "ports"), "Required value")
    seen_ports: set[tuple[str, int]] = set()
    seen_node_ports: set[tuple[str, int]] = set()
    node_port_allowed = spec.type in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER)
    _check_port_names([p.name for p in ports], ("spec", "ports"), report, required=len(ports) > 1)
    for i, port in enumerate(ports):
        path: Path = ("spec", "ports", i)
        errs = formats.port_number(port.port)
        if errs:
            report.invalid((*path, "port"), port.port, errs)
        key = (str(port.protocol), port.port)
        if key in seen_ports:
            report(path, f"Duplicate value: {{port: {port.port}, protocol: {str(port.protocol)}}}")
        seen_ports.add(key)
        target = port.target_port
        if isinstance(target, int):
            errs = formats.port_number(target)
        else:
            errs = formats.iana_svc_name(target)
        if errs:
            report.invalid((*path, "targetPort"), target, errs)
        if port.node_port:
            if not node_port_allowed:
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


def _check_port_names(names: list[str], path: Path, report: _Reporter, required: bool, empty_is_a_name: bool = False) -> None:
    """Port names: DNS-1123 labels, unique; ``required`` when a list holds several ports."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        where = (*path, i, "name")
        if not name and required:
            report(where, "Required value")
        elif name and (errs := formats.dns1123_label(name)):
            report.invalid(where, name, errs)
        elif (name or empty_is_a_name) and name in seen:
            report(where, f'Duplicate value: "{name}"')
        seen.add(name)


# ---- Endpoints, EndpointSlice, Pod --------------------------------------------------------


def _check_endpoint_address(ip: str, path: Path, report: _Reporter, family: int | None = None) -> None:
    errs = formats.non_special_ip(ip)
    if not errs and family is not None and formats.ip_version(ip) != family:
        errs = [f"must be an IPv{family} address"]
    if errs:
        report.invalid(path, ip, errs)


def _check_endpoints(ep: Endpoints, report: _Reporter, _: NodePortRange) -> None:
    _check_meta(ep.metadata, report, _NAME_RULE[Endpoints])
    for s, subset in enumerate(ep.subsets):
        for field_name, addresses in (("addresses", subset.addresses), ("notReadyAddresses", subset.not_ready_addresses)):
            for a, address in enumerate(addresses):
                path: Path = ("subsets", s, field_name, a)
                _check_endpoint_address(address.ip, (*path, "ip"), report)
                if address.hostname and (errs := formats.dns1123_label(address.hostname)):
                    report.invalid((*path, "hostname"), address.hostname, errs)
                if address.node_name and (errs := formats.dns1123_subdomain(address.node_name)):
                    report.invalid((*path, "nodeName"), address.node_name, errs)
        _check_port_names([p.name for p in subset.ports], ("subsets", s, "ports"), report, required=len(subset.ports) > 1)
        for p, port in enumerate(subset.ports):
            if errs := formats.port_number(port.port):
                report.invalid(("subsets", s, "ports", p, "port"), port.port, errs)


_SLICE_FAMILY = {AddressType.IPV4: 4, AddressType.IPV6: 6}
MAX_SLICE_ENDPOINTS = 1000
MAX_SLICE_PORTS = 100
MAX_ENDPOINT_ADDRESSES = 100


def _check_slice(es: EndpointSlice, report: _Reporter, _: NodePortRange) -> None:
    _check_meta(es.metadata, report, _NAME_RULE[EndpointSlice])
    if len(es.endpoints) > MAX_SLICE_ENDPOINTS:
        report(("endpoints",), f"Too many: {len(es.endpoints)}: must have at most {MAX_SLICE_ENDPOINTS} items")
    family = _SLICE_FAMILY.get(es.address_type)
    for e, endpoint in enumerate(es.endpoints):
        path: Path = ("endpoints", e)
        if not endpoint.addresses:
            report((*path, "addresses"), "Required value: must contain at least 1 address")
        elif len(endpoint.addresses) > MAX_ENDPOINT_ADDRESSES:
            report((*path, "addresses"), f"Too many: must have at most {MAX_ENDPOINT_ADDRESSES} items")
        for a, address in enumerate(endpoint.addresses):
            if family is None:
                if errs := formats.dns1123_subdomain(address):
                    report.invalid((*path, "addresses", a), address, errs)
            else:
                _check_endpoint_address(address, (*path, "addresses", a), report, family)
        if endpoint.node_name and (errs := formats.dns1123_subdomain(endpoint.node_name)):
            report.invalid((*path, "nodeName"), endpoint.node_name, errs)
        if endpoint.hostname and (errs := formats.dns1123_label(endpoint.hostname)):
            report.invalid((*path, "hostname"), endpoint.hostname, errs)
    if len(es.ports) > MAX_SLICE_PORTS:
        report(("ports",), f"Too many: {len(es.ports)}: must have at most {MAX_SLICE_PORTS} items")
    # An EndpointSlice's port names are optional, but two unnamed ports are duplicates too.
    _check_port_names([p.name for p in es.ports], ("ports",), report, required=False, empty_is_a_name=True)
    for p, port in enumerate(es.ports):
        if port.port is not None and (errs := formats.port_number(port.port)):
            report.invalid(("ports", p, "port"), port.port, errs)


def _check_pod(pod: Pod, report: _Reporter, _: NodePortRange) -> None:
    _check_meta(pod.metadata, report, _NAME_RULE[Pod])
    for i, ip in enumerate(pod.ips):
        # The EndpointSlice the controller would make of it must pass the same address rules.
        if errs := formats.non_special_ip(ip):
            path: Path = ("status", "podIPs", i, "ip") if pod.status.pod_ips else ("status", "podIP")
            report.invalid(path, ip, errs)
    for c, container in enumerate(pod.spec.containers):
        for p, port in enumerate(container.ports):
            path = ("spec", "containers", c, "ports", p)
            if errs := formats.port_number(port.container_port):
                report.invalid((*path, "containerPort"), port.container_port, errs)
            if port.name and (errs := formats.iana_svc_name(port.name)):
                report.invalid((*path, "name"), port.name, errs)


_RULES = {Service: _check_service, Endpoints: _check_endpoints, EndpointSlice: _check_slice, Pod: _check_pod}


# ---- across objects -----------------------------------------------------------------------


def _check_across(inventory: Inventory, problems: list[Problem]) -> None:
    """What no single object shows: an object twice, a cluster IP or a node port held twice."""
    for entries in (inventory.services, inventory.endpoints, inventory.slices, inventory.pods):
        first: dict[str, Entry[Any]] = {}
        for entry in entries:
            ref = entry.obj.ref
            if ref in first:
                where = first[ref].origin
                problems.append(
                    Problem(
                        f"Duplicate value: {entry.obj.kind} {ref} is already defined at {where.source.name}:{where.line}",
                        ("metadata", "name"), entry.origin, entry.obj.kind, ref,
                    )
                )
            else:
                first[ref] = entry
    # One owner per cluster IP; the API server's node port allocator holds a port number for
    # one Service, whatever the protocol (one Service may use it for TCP and UDP).
    owner: dict[tuple[str, str | int], str] = {}
    for entry in inventory.services:
        svc = entry.obj
        for held in held_values(svc):
            holder = owner.setdefault(held.key, svc.ref)
            if holder != svc.ref:
                problems.append(Problem(held.taken_by(holder), held.path, entry.origin, svc.kind, svc.ref))


class Held(NamedTuple):
    """A value a Service holds that no other Service may: a cluster IP or a node port number."""

    key: tuple[str, str | int]  # ("ip", canonical text) or ("nodePort", number)
    path: Path
    shown: str

    def taken_by(self, owner: str) -> str:
        what = "IP" if self.key[0] == "ip" else "port"
        return f"Invalid value: {self.shown}: provided {what} is already allocated (to Service {owner})"


def held_values(svc: Service) -> list[Held]:
    """The cluster IPs and node ports a Service holds, each once, with the field that sets it."""
    out: dict[tuple[str, str | int], Held] = {}
    key: tuple[str, str | int]
    for i, ip in enumerate(svc.spec.cluster_ips):
        if ip != "None":
            key = ("ip", formats.canonical_ip(ip))
            out.setdefault(key, Held(key, ("spec", "clusterIPs", i), f'"{ip}"'))
    for i, port in enumerate(svc.spec.ports):
        if port.node_port:
            key = ("nodePort", port.node_port)
            out.setdefault(key, Held(key, ("spec", "ports", i, "nodePort"), str(port.node_port)))
    return list(out.values())
