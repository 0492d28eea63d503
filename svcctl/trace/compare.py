"""A trace against the kernel: what probe packets met in the real rules (``Observed``, one per
probe, made by a back end's probe) and how that differs from the prediction, in words."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from .path import Trace, Verdict


@dataclass(frozen=True)
class Observed:
    """What one probe packet met in the kernel's rules."""

    verdict: Verdict
    target: str | None  # the DNAT target, ``IP:PORT`` / ``[IP6]:PORT``
    masquerade: bool
    affinity: bool  # DNATed by a rule that sends a known client back to its endpoint
    rules: tuple[str, ...]  # the rules it hit, in order


@dataclass(frozen=True)
class Check:
    probes: tuple[Observed, ...]
    differences: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return not self.differences

    @property
    def targets(self) -> Counter[str]:
        return Counter(p.target for p in self.probes if p.target)


def probe_count(trace: Trace) -> int:
    """How many probes are worth sending: enough to see every endpoint of a few at once (each is
    missed by 8 per endpoint with a chance under 1/2000 for 3 endpoints), at most 64."""
    if trace.affinity_timeout:
        return 4  # the first picks, the others must come back to it
    return min(64, 8 * len(trace.endpoints)) if trace.endpoints else 2


def compare(trace: Trace, probes: Sequence[Observed]) -> Check:
    predicted = {c.address: c for c in trace.endpoints}
    differences: list[str] = []
    for i, seen in enumerate(probes, 1):
        if seen.verdict is not trace.verdict:
            differences.append(f"probe {i}: the kernel's verdict is {seen.verdict}, the trace's {trace.verdict}")
            continue
        if seen.verdict is not Verdict.DNAT:
            continue
        candidate = predicted.get(seen.target or "")
        if candidate is None:
            differences.append(f"probe {i}: the kernel sent it to {seen.target}, not one of the trace's endpoints")
        elif seen.masquerade is not candidate.masquerade:
            said = "masqueraded it" if seen.masquerade else "kept its source"
            differences.append(f"probe {i} to {seen.target}: the kernel {said}, the trace says the opposite")
        if trace.affinity_timeout and i > 1 and not seen.affinity:
            differences.append(f"probe {i}: session affinity did not send the client back to its endpoint")
        if not trace.affinity_timeout and seen.affinity:
            differences.append(f"probe {i}: a session-affinity rule sent it, the trace has no affinity")
    if trace.affinity_timeout and len({p.target for p in probes}) > 1:
        differences.append(f"session affinity: one client went to {len({p.target for p in probes})} endpoints")
    return Check(tuple(probes), tuple(differences))
