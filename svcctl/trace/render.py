"""A trace as text for people (probabilities as fractions and percent) or as JSON for scripts
(docs/cli.md, "svcctl trace"; the contract's schema, plus a few fields)."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from ..plan.model import Frontend
from .compare import Check
from .path import Trace, service_name

_FRONTEND_TEXT = {
    Frontend.CLUSTER_IP: "by its ClusterIP",
    Frontend.EXTERNAL_IP: "by an externalIP",
    Frontend.LOAD_BALANCER_IP: "by a LoadBalancer IP",
    Frontend.NODE_PORT: "by its NodePort",
}


def _percent(p: Fraction) -> str:
    return f"{float(p) * 100:.1f}%"


def _source(trace: Trace) -> str:
    p = trace.packet
    return f"this node ({p.source})" if p.local else p.source


def text(trace: Trace, check: Check | None = None) -> str:
    p = trace.packet
    rows = [("packet", f"{p.protocol.value.lower()} {_source(trace)} -> {p.to}, a new connection")]
    name = service_name(trace.port) if trace.port else None
    rows.append(("service", f"{name}, {_FRONTEND_TEXT[trace.frontend]}" if name and trace.frontend else "none"))
    rows.append(("verdict", str(trace.verdict)))
    hairpin = not trace.masquerade and any(c.masquerade for c in trace.endpoints)  # some endpoints only
    if trace.endpoints:
        width = max(len(c.address) for c in trace.endpoints)
        fracs = max(len(str(c.probability)) for c in trace.endpoints)
        for i, c in enumerate(trace.endpoints):
            note = "  masqueraded (hairpin)" if hairpin and c.masquerade else ""
            line = f"{c.address.ljust(width)}  {str(c.probability).rjust(fracs)}  {_percent(c.probability).rjust(6)}{note}"
            rows.append(("endpoints" if i == 0 else "", line))
    masquerade = "only when the source reaches itself (hairpin)" if hairpin else "yes" if trace.masquerade else "no"
    rows.append(("masquerade", masquerade))
    affinity = f"ClientIP, {trace.affinity_timeout}s" if trace.affinity_timeout else "no"
    rows.append(("affinity", affinity))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}".rstrip() for k, v in rows]
    lines.append("why")
    lines += [f"  {i}. {r}" for i, r in enumerate(trace.reasons, 1)]
    if check is not None:
        lines += _check_text(trace, check)
    return "\n".join(lines) + "\n"


def _check_text(trace: Trace, check: Check) -> list[str]:
    n = len(check.probes)
    if check.agrees:
        seen = ", ".join(f"{t} {k}x" for t, k in sorted(check.targets.items()))
        lines = [f"kernel  agrees: {n} probe(s), verdict {trace.verdict}" + (f", DNAT to {seen}" if seen else "")]
        if check.probed.shares:
            lines.append("  the rules give each endpoint the trace's chance")
    else:
        lines = [f"kernel  DISAGREES ({n} probe(s)):"] + [f"  - {d}" for d in check.differences]
    if check.probes:
        lines.append("  rules the first probe hit:")
        lines += [f"    {r}" for r in check.probes[0].rules] or ["    none"]
    return lines


def as_json(trace: Trace, check: Check | None = None) -> str:
    p = trace.packet
    data: dict[str, Any] = {
        "verdict": str(trace.verdict),
        "service": service_name(trace.port) if trace.port else None,
        "path": str(trace.frontend) if trace.frontend else None,
        "endpoints": [
            {"address": c.address, "probability": float(c.probability), "fraction": str(c.probability), "masquerade": c.masquerade}
            for c in trace.endpoints
        ],
        "masquerade": trace.masquerade,
        "affinity": trace.affinity_timeout is not None,
        "reasons": list(trace.reasons),
        "from": p.source,
        "fromNode": p.local,
        "to": p.to,
        "protocol": p.protocol.value.lower(),
        "affinityTimeout": trace.affinity_timeout,
    }
    if trace.hints is not None:
        data["topology"] = trace.hints.fields()
    if check is not None:
        data["kernel"] = {
            "agrees": check.agrees,
            "differences": list(check.differences),
            "shares": [{"address": a, "probability": float(p), "fraction": str(p)} for a, p in check.probed.shares],
            "probes": [
                {"verdict": str(o.verdict), "dnat": o.target, "masquerade": o.masquerade, "affinity": o.affinity, "rules": list(o.rules)}
                for o in check.probes
            ],
        }
    return json.dumps(data, indent=2) + "\n"
