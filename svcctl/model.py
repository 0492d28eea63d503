"""The Kubernetes objects svcctl reads, as typed, frozen models, with the API server's defaults.

Field names are snake_case in Python and the API's camelCase in manifests. Unknown fields are
errors on the objects svcctl interprets (Service, Endpoints, EndpointSlice, ServiceCIDR), as
kubectl's default strict field validation makes them; Pods and Nodes are only read for a few
fields, the rest is ignored.
Types are strict like Go's JSON decoding: ``port: "80"`` is an error, not 80.

Defaults that need nothing but the object itself are applied here (API server defaulting runs
before validation); defaults that depend on the cluster (cluster IPs, node ports) are allocated
later, in ``allocate``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, PlainValidator, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError, core_schema
from pydantic.alias_generators import to_camel

from . import bulk
from .bulk import Endpoint, EndpointAddress


class _Model(BaseModel):
    # defer_build: a model's validator is built when it first validates (~3 ms each), so a run
    # pays only for the kinds its manifests hold.
    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    @model_validator(mode="wrap")
    @classmethod
    def _null_is_absent(cls, data: Any, handler: Any) -> Any:
        # Go's JSON decoding treats `field: null` as a missing field (`endpoints: null` is common
        # in dumps); drop such keys so the field's default applies.
        if isinstance(data, dict) and None in data.values():
            data = {k: v for k, v in data.items() if v is not None}
        return handler(data)


class _Lenient(_Model):
    """For objects of which svcctl reads only a part (Pods): other fields are ignored."""

    model_config = ConfigDict(extra="ignore")


@dataclass(frozen=True)
class OneOf:
    """Marks a field that takes one of an enum's values: ``Annotated[Protocol, OneOf(Protocol)]``.
    A string outside the enum is kept as it is, so that validate reports it together with the
    object's other problems, as the API server does; a value that is no string at all is a type
    error here. Validated with a list as pydantic's context, such a string is also added to the
    list: validate looks for where they stand only in the objects that have one."""

    enum: type[StrEnum]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(self._member)

    def _member(self, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "must be a string")
        found = self.enum._value2member_map_.get(value)
        if found is None:
            if isinstance(info.context, list):
                info.context.append(value)
            return value
        return found


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    EXTERNAL_NAME = "ExternalName"


class TrafficPolicy(StrEnum):
    CLUSTER = "Cluster"
    LOCAL = "Local"


class SessionAffinity(StrEnum):
    NONE = "None"
    CLIENT_IP = "ClientIP"


class IPFamily(StrEnum):
    IPV4 = "IPv4"
    IPV6 = "IPv6"


class IPFamilyPolicy(StrEnum):
    SINGLE_STACK = "SingleStack"
    PREFER_DUAL_STACK = "PreferDualStack"
    REQUIRE_DUAL_STACK = "RequireDualStack"


class AddressType(StrEnum):
    IPV4 = "IPv4"
    IPV6 = "IPv6"
    FQDN = "FQDN"


class IPMode(StrEnum):
    VIP = "VIP"
    PROXY = "Proxy"


DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds: the API server's default for ClientIP affinity

StrMap = dict[str, str]

# ---- metadata -----------------------------------------------------------------------------


class OwnerReference(_Model):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(_Model):
    name: str = ""
    namespace: str = "default"
    generate_name: str | None = None
    labels: StrMap = Field(default_factory=dict)
    annotations: StrMap = Field(default_factory=dict)
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    finalizers: list[str] | None = None
    owner_references: list[OwnerReference] | None = None
    managed_fields: list[dict[str, Any]] | None = None
    self_link: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_namespace_is_default(cls, data: Any) -> Any:
        # The API server puts namespaced objects without a namespace into "default".
        if isinstance(data, dict) and data.get("namespace") in (None, ""):
            data = {**data, "namespace": "default"}
        return data


class ClusterObjectMeta(ObjectMeta):
    """The metadata of a cluster-scoped object (a Node, a ServiceCIDR): it has no namespace."""

    namespace: str = ""

    @model_validator(mode="before")
    @classmethod
    def _empty_namespace_is_default(cls, data: Any) -> Any:
        # The API server clears the namespace of a cluster-scoped object (rest.BeforeCreate).
        if isinstance(data, dict) and "namespace" in data:
            data = {k: v for k, v in data.items() if k != "namespace"}
        return data


class _Object(_Model):
    namespaced: ClassVar[bool] = True  # False for cluster-scoped kinds, which have no namespace

    api_version: str
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @property
    def ref(self) -> str:
        """``namespace/name``, or ``name`` for a cluster-scoped kind: how kubectl names it."""
        return ref(type(self), self.metadata.namespace, self.metadata.name)


def ref(model: type[_Object], namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if model.namespaced else name


# ---- Service ------------------------------------------------------------------------------

def _int_or_string(value: Any) -> int | str:
    # Go's intstr.IntOrString: a JSON number or a JSON string, nothing else (not a boolean).
    if type(value) is int or type(value) is str:
        return value
    raise PydanticCustomError("int_or_string_type", "must be an integer or a string")


IntOrString = Annotated[int | str, PlainValidator(_int_or_string)]


class ServicePort(_Model):
    name: str = ""
    protocol: Annotated[Protocol, OneOf(Protocol)] = Protocol.TCP
    port: int
    target_port: IntOrString
    node_port: int = 0
    app_protocol: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_target_port(cls, data: Any) -> Any:
        # An unset (or zero/empty) targetPort means "the same as port". (Not `in (None, 0, "")`:
        # False and 0.0 compare equal to 0 and must stay type errors.)
        target = data.get("targetPort") if isinstance(data, dict) else None
        if isinstance(data, dict) and (target is None or target == "" or (type(target) is int and target == 0)):
            port = data.get("port")
            # A port that is no integer is refused for itself; a copy would be reported once more.
            data = {**data, "targetPort": port if type(port) is int else 0}
        return data


class ClientIPConfig(_Model):
    timeout_seconds: int = DEFAULT_AFFINITY_TIMEOUT


class SessionAffinityConfig(_Model):
    client_ip: ClientIPConfig | None = Field(default=None, alias="clientIP")


class ServiceSpec(_Model):
    type: Annotated[ServiceType, OneOf(ServiceType)] = ServiceType.CLUSTER_IP
    ports: list[ServicePort] = Field(default_factory=list)
    selector: StrMap | None = None
    cluster_ip: str = Field(default="", alias="clusterIP")
    cluster_ips: list[str] = Field(default_factory=list, alias="clusterIPs")
    ip_families: list[Annotated[IPFamily, OneOf(IPFamily)]] = Field(default_factory=list, alias="ipFamilies")
    ip_family_policy: Annotated[IPFamilyPolicy, OneOf(IPFamilyPolicy)] | None = None
    external_ips: list[str] = Field(default_factory=list, alias="externalIPs")
    external_name: str = ""
    external_traffic_policy: Annotated[TrafficPolicy, OneOf(TrafficPolicy)] | None = None
    internal_traffic_policy: Annotated[TrafficPolicy, OneOf(TrafficPolicy)] | None = None
    session_affinity: Annotated[SessionAffinity, OneOf(SessionAffinity)] = SessionAffinity.NONE
    session_affinity_config: SessionAffinityConfig | None = None
    load_balancer_ip: str = Field(default="", alias="loadBalancerIP")
    load_balancer_source_ranges: list[str] = Field(default_factory=list)
    load_balancer_class: str | None = None
    health_check_node_port: int = 0
    allocate_load_balancer_node_ports: bool | None = None
    publish_not_ready_addresses: bool = False
    traffic_distribution: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _api_defaults(cls, data: Any) -> Any:
        """The API server's defaulting (SetDefaults_Service) of what depends on the Service alone."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        kind = data.get("type") or "ClusterIP"
        data["type"] = kind
        if kind != "ExternalName":
            data.setdefault("internalTrafficPolicy", "Cluster")
            if data.get("clusterIP") and not data.get("clusterIPs"):
                data["clusterIPs"] = [data["clusterIP"]]
            if data.get("clusterIPs") and not data.get("clusterIP"):
                data["clusterIP"] = data["clusterIPs"][0]
        external = kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and data.get("externalIPs"))
        if external and not data.get("externalTrafficPolicy"):
            data["externalTrafficPolicy"] = "Cluster"
        if kind == "LoadBalancer" and data.get("allocateLoadBalancerNodePorts") is None:
            data["allocateLoadBalancerNodePorts"] = True
        if not data.get("sessionAffinity"):
            data["sessionAffinity"] = "None"
        if data["sessionAffinity"] == "ClientIP":
            config = data.get("sessionAffinityConfig") or {}
            client = (config.get("clientIP") or {}) if isinstance(config, dict) else None
            # Only a missing (nil) timeout is defaulted: an explicit 0 stays 0 and validation
            # refuses it (SetDefaults_Service tests TimeoutSeconds == nil).
            if isinstance(client, dict) and client.get("timeoutSeconds") is None:
                data["sessionAffinityConfig"] = {
                    **config,
                    "clientIP": {**client, "timeoutSeconds": DEFAULT_AFFINITY_TIMEOUT},
                }
        return data

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"

    @property
    def affinity_timeout(self) -> int | None:
        """Seconds a client keeps its endpoint, or None without ClientIP affinity."""
        if self.session_affinity is not SessionAffinity.CLIENT_IP:
            return None
        config = self.session_affinity_config
        if config and config.client_ip:
            return config.client_ip.timeout_seconds
        return DEFAULT_AFFINITY_TIMEOUT


class LoadBalancerIngress(_Model):
    ip: str = ""
    hostname: str = ""
    ip_mode: Annotated[IPMode, OneOf(IPMode)] | None = None
    ports: list[dict[str, Any]] | None = None


class LoadBalancerStatus(_Model):
    ingress: list[LoadBalancerIngress] = Field(default_factory=list)


class ServiceStatus(_Model):
    load_balancer: LoadBalancerStatus = Field(default_factory=LoadBalancerStatus)
    conditions: list[dict[str, Any]] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _empty_is_shared(cls, data: Any, handler: Any) -> Any:
        # Nearly every Service of a dump has `status: {loadBalancer: {}}`: one frozen instance
        # serves them all (two models less per Service: ~10 MB at 10,000 Services).
        if data == {} or data == _NO_LOAD_BALANCER:
            return empty_status()
        return handler(data)


_NO_LOAD_BALANCER: dict[str, Any] = {"loadBalancer": {}}


@functools.cache
def empty_status() -> ServiceStatus:
    return ServiceStatus.model_construct()  # the defaults, nothing to validate


class Service(_Object):
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus = Field(default_factory=empty_status)


# ---- Endpoints ----------------------------------------------------------------------------


EndpointAddresses = Annotated[tuple[EndpointAddress, ...], PlainValidator(bulk.endpoint_addresses)]


class EndpointPort(_Model):
    name: str = ""
    port: int
    protocol: Annotated[Protocol, OneOf(Protocol)] = Protocol.TCP
    app_protocol: str | None = None


class EndpointSubset(_Model):
    addresses: EndpointAddresses = ()
    not_ready_addresses: EndpointAddresses = ()
    ports: list[EndpointPort] = Field(default_factory=list)


class Endpoints(_Object):
    subsets: list[EndpointSubset] = Field(default_factory=list)


# ---- EndpointSlice ------------------------------------------------------------------------


class EndpointSlicePort(_Model):
    name: str = ""
    protocol: Annotated[Protocol, OneOf(Protocol)] = Protocol.TCP
    port: int | None = None
    app_protocol: str | None = None


class EndpointSlice(_Object):
    address_type: Annotated[AddressType, OneOf(AddressType)]
    endpoints: Annotated[tuple[Endpoint, ...], PlainValidator(bulk.endpoints)] = ()
    ports: list[EndpointSlicePort] = Field(default_factory=list)


# ---- Pod ----------------------------------------------------------------------------------


class ContainerPort(_Lenient):
    name: str = ""
    container_port: int
    protocol: Annotated[Protocol, OneOf(Protocol)] = Protocol.TCP


class Container(_Lenient):
    name: str = ""
    ports: list[ContainerPort] = Field(default_factory=list)


class PodSpec(_Lenient):
    node_name: str = ""
    hostname: str = ""
    subdomain: str = ""
    containers: list[Container] = Field(default_factory=list)
    init_containers: list[Container] = Field(default_factory=list)


class PodCondition(_Lenient):
    type: str
    status: str


class PodIP(_Lenient):
    ip: str


class PodStatus(_Lenient):
    phase: str = ""
    pod_ip: str = Field(default="", alias="podIP")
    pod_ips: list[PodIP] = Field(default_factory=list, alias="podIPs")
    conditions: list[PodCondition] = Field(default_factory=list)


class PodMeta(ObjectMeta, _Lenient):
    pass


class Pod(_Object, _Lenient):
    metadata: PodMeta = Field(default_factory=PodMeta)
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus = Field(default_factory=PodStatus)

    @property
    def ips(self) -> list[str]:
        if self.status.pod_ips:
            return [p.ip for p in self.status.pod_ips]
        return [self.status.pod_ip] if self.status.pod_ip else []

    @property
    def ready(self) -> bool:
        return any(c.type == "Ready" and c.status == "True" for c in self.status.conditions)


# ---- ServiceCIDR --------------------------------------------------------------------------


class ServiceCIDRSpec(_Model):
    cidrs: list[str] = Field(default_factory=list)


class ServiceCIDRStatus(_Model):
    conditions: list[dict[str, Any]] | None = None


class ServiceCIDR(_Object):
    """networking.k8s.io/v1: one or two ranges (one per IP family) that cluster IPs come from."""

    namespaced: ClassVar[bool] = False
    metadata: ClusterObjectMeta = Field(default_factory=ClusterObjectMeta)
    spec: ServiceCIDRSpec = Field(default_factory=ServiceCIDRSpec)
    status: ServiceCIDRStatus = Field(default_factory=ServiceCIDRStatus)


# ---- Node ---------------------------------------------------------------------------------

ZONE_LABEL = "topology.kubernetes.io/zone"


class NodeMeta(ClusterObjectMeta, _Lenient):
    pass


class NodeAddress(_Lenient):
    type: str
    address: str


class NodeStatus(_Lenient):
    addresses: list[NodeAddress] = Field(default_factory=list)


class Taint(_Lenient):
    key: str = ""


class NodeSpec(_Lenient):
    taints: list[Taint] = Field(default_factory=list)


# The taint the cluster autoscaler puts on a node it is about to remove.
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"


class Node(_Object, _Lenient):
    """A Node's name and labels (its zone, for topology-aware routing), addresses (this node's
    IPs, as kube-proxy takes them from its own Node), deletion and taints (whether it is going
    away); the rest is ignored."""

    namespaced: ClassVar[bool] = False
    metadata: NodeMeta = Field(default_factory=NodeMeta)
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)

    @property
    def going(self) -> bool:
        """Being deleted, or about to be by the cluster autoscaler: load balancers should send
        it no new connections (kube-proxy's /healthz then says 503: NodeEligible)."""
        return self.metadata.deletion_timestamp is not None or any(t.key == TO_BE_DELETED_TAINT for t in self.spec.taints)

    def primary_ips(self) -> dict[int, str]:
        """The node's IP per family as kube-proxy picks it (GetNodeHostIPs): the first InternalIP
        of the family, else the first ExternalIP."""
        found: dict[int, str] = {}
        for kind in ("InternalIP", "ExternalIP"):
            for a in self.status.addresses:
                if a.type == kind:
                    found.setdefault(6 if ":" in a.address else 4, a.address)
        return found

    @property
    def zone(self) -> str:
        return self.metadata.labels.get(ZONE_LABEL, "")


# (apiVersion, kind) -> model. Other kinds are skipped.
KINDS: dict[tuple[str, str], type[_Object]] = {
    ("v1", "Service"): Service,
    ("v1", "Endpoints"): Endpoints,
    ("discovery.k8s.io/v1", "EndpointSlice"): EndpointSlice,
    ("v1", "Pod"): Pod,
    ("networking.k8s.io/v1", "ServiceCIDR"): ServiceCIDR,
    ("v1", "Node"): Node,
}
