"""externalTrafficPolicy: the route of traffic to a Service port's NodePort, externalIPs and
LoadBalancer IPs."""

from __future__ import annotations

from ..model import TrafficPolicy
from ..resolve import ResolvedService
from .endpoints import EndpointChoice
from .model import ExternalRoute, PortRef


def route(svc: ResolvedService, ref: PortRef, choice: EndpointChoice, pods_known: bool) -> ExternalRoute:
    """``pods_known``: a cluster CIDR of this family tells pods from outside clients."""
    if svc.external_traffic_policy is TrafficPolicy.LOCAL:
        # Pods and the node itself still reach every endpoint (kube-proxy's short-circuits);
        # outside clients only this node's, with their source address kept: that is what the
        # policy is for, so --masquerade-all (which marks traffic to cluster IPs) leaves it alone,
        # as in kube-proxy.
        return ExternalRoute(
            ref,
            local_policy=True,
            mark_all=False,
            pods_to=choice.cluster if pods_known else None,
            node_to=choice.cluster,
            then_to=choice.node_local if choice.local else None,
        )
    return ExternalRoute(ref, local_policy=False, mark_all=True, pods_to=None, node_to=None, then_to=choice.cluster)
