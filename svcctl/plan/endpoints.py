"""Which endpoints a Service port's traffic may go to, and the cascade that picks one.

kube-proxy keeps two sets per Service port (svcctl.topology.categorize): the endpoints for
cluster-wide traffic (all usable ones, narrowed by topology hints) and this node's (traffic
under a Local policy); a group is only made when some traffic uses it.
"""

from __future__ import annotations

import functools
import operator
from typing import Callable, Iterable, NamedTuple, cast

from ..model import Protocol, TrafficPolicy
from ..resolve import Backend, ResolvedPort, ResolvedService
from ..topology import Mode, categorize, uses
from .model import Endpoint, EndpointGroup, Pick, PortRef

# tuple.__new__ builds each NamedTuple in C (their own __new__ is Python): 100,000s of them.
_pick: Callable[[tuple[Endpoint, int | None]], Pick] = functools.partial(tuple.__new__, Pick)  # type: ignore[arg-type]
_endpoint: Callable[[tuple[str, int]], Endpoint] = functools.partial(tuple.__new__, Endpoint)  # type: ignore[arg-type]
_address_port = operator.itemgetter(0, 1)  # of a Backend


def cascade(backends: Iterable[Backend]) -> tuple[Pick, ...]:
    """Rule i of N matches with probability 1/(N-i) among the connections that reach it, the
    last rule always: each endpoint is chosen with probability exactly 1/N. (One rule per
    endpoint in one chain: the kernel loads it in linear time, docs/nft-layout.md.)"""
    ordered = list(backends)
    moduli = (*range(len(ordered), 1, -1), None)  # N, N-1, ..., 2, then always
    # map and zip run in C: a generator here took a third of choose's time (100,000 endpoints).
    return tuple(map(_pick, zip(map(_endpoint, map(_address_port, ordered)), moduli)))


class EndpointChoice(NamedTuple):
    any: bool  # some endpoint of this family is usable (ready, or serving and terminating)
    local: tuple[Backend, ...]  # this node's usable endpoints, where traffic uses them
    cluster: EndpointGroup | None  # the group of the endpoints for cluster-wide traffic, if some traffic uses it
    node_local: EndpointGroup | None  # the group of this node's, if some traffic uses it
    used: tuple[Backend, ...]  # the endpoints some group DNATs to

    # ``local`` is not always among the cluster group's: hints narrow that one, and with remote
    # endpoints ready and the local ones only serving and terminating, the local group falls
    # back to those (kube-proxy does the same per locality).


def choose(svc: ResolvedService, port: ResolvedPort, ref: PortRef, version: int, has_external: bool) -> EndpointChoice:
    v6 = version == 6  # inline rather than b.version: this runs for every endpoint of every port, per family
    backends = [b for b in port.backends if (":" in b.address) == v6]
    itp_local = svc.internal_traffic_policy is TrafficPolicy.LOCAL
    etp_local = svc.external_traffic_policy is TrafficPolicy.LOCAL
    found = categorize(backends, *uses(itp_local, etp_local, has_external), svc.node)
    cluster = cast(tuple[Backend, ...], found.cluster or ())
    local = cast(tuple[Backend, ...], found.local or ())
    hints = found.hints
    return EndpointChoice(
        found.any,
        local,
        EndpointGroup(ref, False, cascade(cluster), svc.affinity_timeout, _fallback(cluster), hints) if cluster else None,
        EndpointGroup(ref, True, cascade(local), svc.affinity_timeout, _fallback(local), hints and hints._replace(mode=Mode.LOCAL, kept=len(local), why="")) if local else None,
        tuple(dict.fromkeys(cluster + local)),
    )


def _fallback(usable: tuple[Backend, ...]) -> bool:
    """Whether these are the serving, terminating endpoints that stand in when none is ready."""
    return not any(b.ready for b in usable)


def hairpin(choice: EndpointChoice) -> tuple[str, ...]:
    """Endpoints that may reach themselves through their Service: such a connection must be
    masqueraded, or the pod drops a reply from its own address. Only endpoints on this node
    can (or those of unknown node); listing every endpoint cost ~0.5 s of load at 10k Services."""
    return tuple(dict.fromkeys(b.address for b in choice.used if b.local or not b.node))


def udp_endpoints(port: ResolvedPort, choice: EndpointChoice) -> tuple[Endpoint, ...]:
    """UDP endpoints: an apply that removes one clears the conntrack entries to it (UDP has no
    end of connection, so clients would keep talking to the old endpoint)."""
    if port.protocol is not Protocol.UDP:
        return ()
    return tuple(dict.fromkeys(Endpoint(b.address, b.port) for b in choice.used))
