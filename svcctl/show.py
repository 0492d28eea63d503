"""``svcctl show``: resolved Services as a readable table, or as JSON for scripts, with each
endpoint's chance of a new connection as the plan's cascades give it (the same plan the rules
and ``svcctl trace`` are made from), and where topology hints decide, why this node uses an
endpoint or not."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any, NamedTuple

from .plan import Plan, port_ref
from .plan.model import Endpoint, PortRef
from .resolve import Backend, ResolvedPort, ResolvedService
from .topology import HintUse, Mode

# (Service port, endpoint) -> its chance in the group of all usable endpoints, and in this node's
# group (None: the port has no such group, or the endpoint is not in it)
Shares = dict[tuple[PortRef, Endpoint], tuple[Fraction | None, Fraction | None]]
# (Service port, IP version) -> how topology hints chose its endpoints (svcctl.topology)
Hints = dict[tuple[PortRef, int], HintUse]


class Chances(NamedTuple):
    """What the plan says of each endpoint: its chances, and the hints behind them."""

    shares: Shares
    hints: Hints


def chances(plan: Plan) -> Chances:
    out: Shares = {}
    hints: Hints = {}
    for family in plan.families:
        for port in family.ports:
            for group in port.groups:
                for endpoint, p in group.probabilities():
                    cluster, local = out.get((port.port, endpoint), (None, None))
                    out[(port.port, endpoint)] = (cluster, p) if group.local else (p, local)
                if group.hints is not None:
                    hints.setdefault((port.port, family.version), group.hints)  # the cluster-wide group's comes first
    return Chances(out, hints)


def _shares_text(cluster: Fraction | None, local: Fraction | None, hint: str) -> str:
    parts = ([str(cluster)] if cluster is not None else []) + ([hint] if hint else []) + ([f"local {local}"] if local is not None else [])
    return f" [{', '.join(parts)}]" if parts else ""


def _topology(b: Backend, hints: HintUse | None, cluster: Fraction | None) -> str:
    """Why hints send this node's cluster-wide traffic to the endpoint ("zone hint", "node
    hint") or keep it away ("hints for zone-b"); "" where they decide nothing of it. (Traffic
    under a Local policy goes to this node's endpoints whatever their hints.)"""
    if hints is None or hints.mode not in (Mode.ZONE, Mode.NODE) or not b.ready:
        return ""
    if cluster is not None:
        return f"{hints.mode} hint"
    names = b.zone_hints if hints.mode is Mode.ZONE else b.node_hints
    return f"hints for {', '.join(names)}"


def _backend_text(b: Backend) -> str:
    address = f"[{b.address}]" if b.version == 6 else b.address
    flags = [] if b.ready else ["terminating" if b.terminating else "not ready"]
    if not b.ready and b.terminating and b.serving:
        flags = ["terminating, serving"]
    if b.local:
        flags.append("local")
    return f"{address}:{b.port}" + (f" ({', '.join(flags)})" if flags else "")


def _port_text(p: ResolvedPort) -> str:
    text = f"{p.name + ' ' if p.name else ''}{p.port}/{p.protocol.value}->{p.target_port}"
    return text + (f" nodePort {p.node_port}" if p.node_port else "")


def _addresses(s: ResolvedService) -> str:
    if s.external_name:
        return s.external_name
    if s.headless:
        return "None (headless)"
    parts = list(s.cluster_ips)
    parts += [f"{ip} (external)" for ip in s.external_ips]
    parts += [f"{ip} (load balancer)" for ip in s.load_balancer_ips]
    return ", ".join(parts)


def _endpoint_text(b: Backend, cluster: Fraction | None, local: Fraction | None, hints: HintUse | None) -> str:
    used = cluster is not None or local is not None
    why = _topology(b, hints, cluster)
    if why and not used:
        return f"{_backend_text(b)} [not used: {why}]"
    return _backend_text(b) + _shares_text(cluster, local, why)


def _unused_hints(s: ResolvedService, p: ResolvedPort, found: Chances) -> str:
    """Why the port's hints are not used, per IP family where they are not ("" for none)."""
    ref = port_ref(s, p)
    reasons = {v: h.why for v in (4, 6) if (h := found.hints.get((ref, v))) is not None and h.mode is Mode.ALL}
    if len(reasons) == 1 or len(set(reasons.values())) == 1:
        return f" (hints not used: {next(iter(reasons.values()))})" if reasons else ""
    return "".join(f" (IPv{v} hints not used: {why})" for v, why in reasons.items())


def render_table(services: list[ResolvedService], found: Chances) -> str:
    header = ("SERVICE", "TYPE", "ADDRESSES", "PORT", "ENDPOINTS")
    rows: list[tuple[str, ...]] = []
    for s in services:
        policies = []
        if s.external_traffic_policy and s.external_traffic_policy.value == "Local":
            policies.append("etp=Local")
        if s.internal_traffic_policy and s.internal_traffic_policy.value == "Local":
            policies.append("itp=Local")
        if s.affinity_timeout:
            policies.append(f"affinity={s.affinity_timeout}s")
        kind = s.type.value + (f" [{' '.join(policies)}]" if policies else "")
        ports = s.ports or ()
        if not ports:
            rows.append((s.ref, kind, _addresses(s), "-", "-"))
        for i, p in enumerate(ports):
            ref = port_ref(s, p)
            endpoints = "-"
            if s.proxied:
                endpoints = ", ".join(
                    _endpoint_text(b, *found.shares.get((ref, Endpoint(b.address, b.port)), (None, None)), found.hints.get((ref, b.version)))
                    for b in p.backends
                ) + _unused_hints(s, p, found)
            if s.proxied and not p.backends:
                endpoints = "<none>"
            first = i == 0
            rows.append((s.ref if first else "", kind if first else "", _addresses(s) if first else "", _port_text(p), endpoints))
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1])
    return "\n".join(line.rstrip() for line in lines) + "\n"


def as_data(services: list[ResolvedService], found: Chances) -> list[dict[str, Any]]:
    """The Services as plain data: what ``-o json`` and ``-o yaml`` print."""
    def chance(p: Fraction | None) -> float | None:
        return None if p is None else float(p)

    def endpoint(b: Backend, c: Fraction | None, local: Fraction | None, hints: HintUse | None) -> dict[str, Any]:
        used = c is not None or local is not None
        return {
            "address": b.address, "port": b.port, "nodeName": b.node or None, "zone": b.zone or None,
            "ready": b.ready, "serving": b.serving, "terminating": b.terminating, "local": b.local,
            "probability": chance(c), "localProbability": chance(local),
            "zoneHints": list(b.zone_hints), "nodeHints": list(b.node_hints), "used": used,
            "topology": _topology(b, hints, c) or None,
        }

    def port(s: ResolvedService, p: ResolvedPort) -> dict[str, Any]:
        ref = port_ref(s, p)
        return {
            "name": p.name,
            "protocol": p.protocol.value,
            "port": p.port,
            "targetPort": p.target_port,
            "nodePort": p.node_port or None,
            "endpoints": [
                endpoint(b, *found.shares.get((ref, Endpoint(b.address, b.port)), (None, None)), found.hints.get((ref, b.version)))
                for b in p.backends
            ],
            "topology": [{"family": f"IPv{v}", **h.fields()} for v in (4, 6) if (h := found.hints.get((ref, v))) is not None],
        }

    return [
        {
            "namespace": s.namespace,
            "name": s.name,
            "type": s.type.value,
            "clusterIPs": list(s.cluster_ips),
            "externalIPs": list(s.external_ips),
            "loadBalancerIPs": list(s.load_balancer_ips),
            "loadBalancerSourceRanges": [str(n) for n in s.source_ranges],
            "externalName": s.external_name or None,
            "headless": s.headless,
            "externalTrafficPolicy": s.external_traffic_policy.value if s.external_traffic_policy else None,
            "internalTrafficPolicy": s.internal_traffic_policy.value if s.internal_traffic_policy else None,
            "sessionAffinityTimeout": s.affinity_timeout,
            "endpointSource": s.endpoint_source.value,
            "ports": [port(s, p) for p in s.ports],
        }
        for s in services
    ]


def render_json(services: list[ResolvedService], found: Chances) -> str:
    return json.dumps(as_data(services, found), indent=2) + "\n"


def render_yaml(services: list[ResolvedService], found: Chances) -> str:
    import yaml  # only -o yaml needs the dumper

    return str(yaml.safe_dump(as_data(services, found), sort_keys=False, default_flow_style=False))
