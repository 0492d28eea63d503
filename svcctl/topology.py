"""Topology-aware routing: which endpoints of a Service port this node sends traffic to.

Two actors of a cluster, one function each:

- The EndpointSlice controller writes hints (``controller_hints``): for a Service with
  ``trafficDistribution`` PreferClose or PreferSameZone, each ready endpoint is hinted for its
  own zone; with PreferSameNode also for its own node (trafficdist.go, preferCloseHeuristic).
  svcctl plays the controller where it makes endpoints itself (from Pods, or from the Endpoints
  of a Service with a selector); EndpointSlices in the input keep the hints they carry. The
  ``topology-mode: Auto`` annotation asks for the controller's other algorithm (hints in
  proportion to each zone's CPUs, refused when a zone would be overloaded): svcctl does not
  emulate it, so endpoints it makes for such a Service get no hints (``auto_mode``).
- kube-proxy reads hints only, never trafficDistribution (``categorize``: CategorizeEndpoints
  of pkg/proxy/topology.go): it splits a port's endpoints into those for cluster-wide traffic,
  filtered by the hints, and this node's, which hints never filter.

Pure: objects in, tuples out. The plan (svcctl/plan/endpoints.py) calls ``categorize`` for every
Service port and family, so the rules, ``show``, ``trace`` and the agent all read one answer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple, Protocol, Sequence, TypeVar

from .formats import endpoint_text
from .model import Service
from .validate import SERVICE_NAME_LABEL, Entry, Inventory
from .validate.service import TOPOLOGY_HINTS_ANNOTATION, TOPOLOGY_MODE_ANNOTATION

__all__ = ["Categories", "Endpoint", "HintUse", "Mode", "NodeTopology", "Prefer", "auto_mode", "categorize", "controller_hints", "preference", "unemulated", "uses"]


class NodeTopology(NamedTuple):
    """This node as hints are read against it."""

    name: str  # node hints name it (and an endpoint whose nodeName it is is local)
    zone: str  # zone hints name it; "" (no zone): zone hints are not used


class Endpoint(Protocol):
    """What categorizing needs of an endpoint (svcctl.resolve.Backend has it)."""

    @property
    def address(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def ready(self) -> bool: ...
    @property
    def serving(self) -> bool: ...
    @property
    def terminating(self) -> bool: ...
    @property
    def local(self) -> bool: ...
    @property
    def zone_hints(self) -> tuple[str, ...]: ...
    @property
    def node_hints(self) -> tuple[str, ...]: ...


E = TypeVar("E", bound=Endpoint)


# ---- the EndpointSlice controller -------------------------------------------------------------


class Prefer(StrEnum):
    """The hints the EndpointSlice controller writes for a Service's endpoints."""

    ZONE = "zone"  # trafficDistribution PreferClose (PreferSameZone's deprecated name), PreferSameZone
    NODE = "node"  # PreferSameNode: zone and node hints


_PREFER = {"PreferClose": Prefer.ZONE, "PreferSameZone": Prefer.ZONE, "PreferSameNode": Prefer.NODE}


def auto_mode(svc: Service) -> bool:
    """Whether the Service asks for the controller's proportional (CPU-based) zone hints: the
    ``topology-mode`` annotation (or its deprecated name, read only without it) is ``Auto``.
    The controller then ignores trafficDistribution (reconciler.go, hintsEnabled)."""
    annotations = svc.metadata.annotations
    value = annotations.get(TOPOLOGY_MODE_ANNOTATION, annotations.get(TOPOLOGY_HINTS_ANNOTATION))
    return value in ("Auto", "auto")


def unemulated(inventory: Inventory) -> list[Entry[Service]]:
    """The Services in Auto mode whose endpoints svcctl makes itself (no EndpointSlice of theirs
    in the input): in a cluster the controller may have hinted them; here they have no hints."""
    sliced = {(e.obj.metadata.namespace, e.obj.metadata.labels.get(SERVICE_NAME_LABEL)) for e in inventory.slices}
    return [e for e in inventory.services if auto_mode(e.obj) and (e.obj.metadata.namespace, e.obj.metadata.name) not in sliced]


def preference(svc: Service) -> Prefer | None:
    """The hints the controller writes for the endpoints of ``svc`` that svcctl emulates: None
    for none (no or another trafficDistribution; Auto mode, which svcctl does not emulate)."""
    if auto_mode(svc):
        return None
    return _PREFER.get(svc.spec.traffic_distribution or "")


def controller_hints(prefer: Prefer | None, ready: bool, zone: str, node: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(zone hints, node hints) the controller gives one endpoint: only a ready one is hinted,
    for its own zone and (PreferSameNode) its own node, where it has them."""
    if prefer is None or not ready:
        return (), ()
    return ((zone,) if zone else ()), ((node,) if node and prefer is Prefer.NODE else ())


# ---- kube-proxy ------------------------------------------------------------------------------


class Mode(StrEnum):
    """Which of the ready endpoints cluster-wide traffic from this node goes to."""

    ALL = "all"  # every one: the hints are not used (HintUse.why says why)
    ZONE = "zone"  # those hinted for this node's zone
    NODE = "node"  # those hinted for this node
    LOCAL = "local"  # (this node's endpoints under a Local policy: hints never apply to them)


class HintUse(NamedTuple):
    """How the hints of one Service port's endpoints of one family were used."""

    mode: Mode
    node: NodeTopology
    kept: int  # ready endpoints that get traffic
    ready: int  # ready endpoints
    why: str = ""  # ALL: why the hints are not used; ZONE: why node hints are not (if any exist)

    def fields(self) -> dict[str, object]:
        """The decision for scripts (``show -o json``, ``trace -o json``)."""
        return {
            "mode": str(self.mode), "nodeName": self.node.name or None, "zone": self.node.zone or None,
            "kept": self.kept, "ready": self.ready, "reason": self.why or None,
        }

    def text(self) -> str:
        """The decision in words, as ``trace`` says it."""
        of = f"{self.kept} of {self.ready} ready endpoint(s)"
        if self.mode is Mode.NODE:
            return f"node hints: only the endpoints hinted for this node ({self.node.name}): {of}"
        if self.mode is Mode.ZONE:
            also = f" (node hints not used: {self.why})" if self.why else ""
            return f"zone hints: only the endpoints hinted for this node's zone {self.node.zone}: {of}{also}"
        if self.mode is Mode.LOCAL:
            return "hints do not apply to this node's own endpoints (kube-proxy filters only cluster-wide traffic by them)"
        if not self.ready:
            return f"hints not used: {self.why}"
        return f"hints not used ({self.why}): all {self.ready} ready endpoint(s)"


def uses(itp_local: bool, etp_local: bool, external: bool) -> tuple[bool, bool]:
    """Whether a Service port uses cluster-wide endpoints, and this node's (kube-proxy's
    UsesClusterEndpoints and UsesLocalEndpoints). ``external``: it has a NodePort, externalIPs
    or LoadBalancer IPs (of the family). Cluster-wide endpoints serve ClusterIP traffic under
    internalTrafficPolicy Cluster and every external path (under externalTrafficPolicy Local,
    pods and the node itself still go to them); this node's serve ClusterIP traffic under
    internal Local and outside clients under external Local."""
    return (not itp_local or external), (itp_local or (etp_local and external))


class Categories(NamedTuple):
    """CategorizeEndpoints' answer for one Service port and family. ``cluster`` and ``local`` are
    None where the Service does not use them (kube-proxy's nil), else possibly empty."""

    cluster: tuple[Endpoint, ...] | None  # for ClusterIP (policy Cluster) and external traffic (policy Cluster)
    local: tuple[Endpoint, ...] | None  # this node's, for traffic under a Local policy
    any: bool  # some endpoint is usable (ready, or serving and terminating) anywhere
    # How hints decided ``cluster`` (LOCAL: there is no cluster-wide traffic, so they decide
    # nothing); None: no endpoint has hints.
    hints: HintUse | None


def categorize(endpoints: Sequence[E], uses_cluster: bool, uses_local: bool, node: NodeTopology | None) -> Categories:
    """Split one family's endpoints of a Service port as kube-proxy does.

    - Cluster endpoints: the ready ones, narrowed by the hints when every ready endpoint has
      node hints and some name this node (node mode), else when this node has a zone, every
      ready endpoint has zone hints and some name that zone (zone mode). If no endpoint is
      ready: the serving, terminating ones, whatever their hints (so connections drain during
      a rollout). Readiness is decided first: endpoints that are not ready never count.
    - Local endpoints: this node's ready ones, else this node's serving, terminating ones.
      Hints are never applied to them.

    ``node`` None: no endpoint of the Service has hints (nothing to read them against)."""
    ready = [e for e in endpoints if e.ready]
    if node is not None and not any(e.zone_hints or e.node_hints for e in endpoints):
        node = None  # no hints on this port's endpoints of this family
    hints: HintUse | None = None
    cluster: tuple[Endpoint, ...] | None = None
    if uses_cluster:
        if ready:
            if node is not None:
                hints = _decide(ready, node)
            cluster = tuple(_narrow(ready, hints))
            if hints is not None:
                hints = hints._replace(kept=len(cluster))
        else:
            cluster = tuple(e for e in endpoints if e.serving and e.terminating)
            if node is not None:
                hints = HintUse(Mode.ALL, node, 0, 0, "no endpoint is ready: the serving, terminating ones stand in, whatever their hints")
    elif node is not None:
        hints = HintUse(Mode.LOCAL, node, 0, len(ready))
    local: tuple[Endpoint, ...] | None = None
    if uses_local:
        local = tuple(e for e in ready if e.local) or tuple(e for e in endpoints if e.local and e.serving and e.terminating)
    usable = bool(ready) or any(e.serving and e.terminating for e in endpoints)
    return Categories(cluster, local, usable, hints)


def _narrow(ready: list[E], hints: HintUse | None) -> list[E]:
    if hints is None or hints.mode is Mode.ALL:
        return ready
    if hints.mode is Mode.NODE:
        return [e for e in ready if hints.node.name in e.node_hints]
    return [e for e in ready if hints.node.zone in e.zone_hints]


_NO_ZONE = "this node has no zone: give --node-zone, or a topology.kubernetes.io/zone label to its Node"


def _decide(ready: Sequence[Endpoint], node: NodeTopology) -> HintUse:
    """The mode from the ready endpoints' hints (kube-proxy's topologyModeFromHints; node hints
    since PreferSameTrafficDistribution, GA in 1.35), with the reason a mode is not taken."""
    n = len(ready)
    node_hinted = any(e.node_hints for e in ready)
    node_why = _why(ready, "node", node.name) if node_hinted else ""
    if node_hinted and not node_why:
        return HintUse(Mode.NODE, node, 0, n)
    zone_why = _why(ready, "zone", node.zone) if node.zone else _NO_ZONE
    if not zone_why:
        return HintUse(Mode.ZONE, node, 0, n, node_why)
    return HintUse(Mode.ALL, node, 0, n, "; ".join(dict.fromkeys(w for w in (node_why, zone_why) if w)))


def _why(ready: Sequence[Endpoint], kind: str, name: str) -> str:
    """Why the hints of ``kind`` (zone or node) cannot be used for ``name``: "" when they can:
    every ready endpoint has some, and some name it."""
    field = f"{kind}_hints"
    missing = next((e for e in ready if not getattr(e, field)), None)
    if missing is not None:
        return f"{endpoint_text(missing.address, missing.port)} has no {kind} hint, and they are used only when every ready endpoint has one"
    if not any(name in getattr(e, field) for e in ready):
        return f"no ready endpoint is hinted for {kind} {name}"
    return ""

