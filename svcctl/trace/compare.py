"""A trace against the kernel: what probe packets met in the real rules (``Probed``, made by a
back end's probe) and how that differs from the prediction, in words."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

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
class Probed:
    probes: tuple[Observed, ...]
    # The kernel's cascade in the chain that DNATed the first probe, read from its rules: each
    # endpoint's chance for a client without affinity. () when no probe was DNATed.
    shares: tuple[tuple[str, Fraction], ...] = ()


@dataclass(frozen=True)
class Check:
    probed: Probed
    differences: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return not self.differences

    @property
    def probes(self) -> tuple[Observed, ...]:
        return self.probed.probes

    @property
    def targets(self) -> Counter[str]:
        return Counter(p.target for p in self.probes if p.target)


def probe_count(trace: Trace) -> int:
    """How many probes are worth sending: enough to see every endpoint of a few (8 per endpoint
    miss one of 3 with a chance under 1/2000), at most 64. With affinity, the first picks and
    the others must come back to it."""
    if trace.affinity_timeout:
        return 4
    return min(64, 8 * len(trace.endpoints)) if trace.endpoints else 2


def compare(trace: Trace, probed: Probed) -> Check:
    candidates = {c.address: c for c in trace.endpoints}
    found: dict[str, list[int]] = {}  # difference -> the probes that show it

    def differ(i: int, what: str) -> None:
        found.setdefault(what, []).append(i)

    for i, seen in enumerate(probed.probes, 1):
        if seen.verdict is not trace.verdict:
            differ(i, f"the kernel's verdict is {seen.verdict}, the trace's {trace.verdict}")
            continue
        if seen.verdict is not Verdict.DNAT:
            continue
        candidate = candidates.get(seen.target or "")
        if candidate is None:
            differ(i, f"the kernel sent it to {seen.target}, not one of the trace's endpoints")
        elif seen.masquerade is not candidate.masquerade:
            said = "masqueraded" if seen.masquerade else "kept the source of"
            differ(i, f"the kernel {said} a connection to {seen.target}, the trace says the opposite")
        if trace.affinity_timeout and i > 1 and not seen.affinity:
            differ(i, "session affinity did not send the client back to its endpoint")
        if not trace.affinity_timeout and seen.affinity:
            differ(i, "a session-affinity rule sent it, the trace has no affinity")
    n = len(probed.probes)
    differences = [f"{_probes(numbers, n)}: {what}" for what, numbers in found.items()]
    if trace.affinity_timeout and len({p.target for p in probed.probes}) > 1:
        differences.append(f"session affinity: one client went to {len({p.target for p in probed.probes})} endpoints")
    if probed.shares and trace.verdict is Verdict.DNAT:
        kernel = dict(probed.shares)
        trace_shares = {c.address: c.probability for c in trace.endpoints}
        for target in dict.fromkeys([*trace_shares, *kernel]):
            predicted, held = trace_shares.get(target, Fraction(0)), kernel.get(target, Fraction(0))
            if predicted != held:
                differences.append(f"the kernel's rules give {target} a chance of {held}, the trace {predicted}")
    return Check(probed, tuple(differences))


def _probes(numbers: list[int], total: int) -> str:
    if len(numbers) == 1:
        return f"probe {numbers[0]}"
    return f"{len(numbers)} of {total} probes"
