"""``svcctl trace --kernel`` for iptables: the rules loaded into a throwaway namespace built as a
node (svcctl.trace.inject), probe packets sent through it one at a time, and what each one met
read from the rules' packet counters (``iptables-save -c``): the rules whose count went up are
the ones that matched it, its DNAT target, its masquerade, a session-affinity check.

iptables-legacy's TRACE target logs to the kernel log, iptables-nft's to nftables tracing: the
counters are the same for both flavours, and cost one save per probe.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from fractions import Fraction

from ..kernel import in_throwaway_netns
from ..trace.compare import Observed, Probed
from ..trace.inject import build_node, send
from ..trace.packet import Packet
from ..trace.path import Verdict
from .decide import staged, table_update
from .frame import POSTROUTING, PREFIX, SEP, SVC, SVL, TableName
from .objects import Family
from .render import Planned, render
from .state import TableState, parse_save, target
from .xtables import Saves, Xtables

_COUNTED = re.compile(r"^\[(\d+):\d+\] (-A .*)$")
_TO = re.compile(r"--to-destination (\S+)")
_PROBABILITY = re.compile(r"--probability (\S+)")
ARRIVAL = 1.0  # seconds a probe may take to reach the rules (a packet on a veth is received in a softirq)
SETTLE = 0.01  # and then to finish its way through them


def counted(text: str) -> Counter[tuple[str, int]]:
    """``iptables-save -c`` output -> packets per rule, a rule told by its line and by how many
    copies of that line come before it."""
    packets: Counter[tuple[str, int]] = Counter()
    seen: Counter[str] = Counter()
    for raw in text.splitlines():
        m = _COUNTED.match(raw)
        if m:
            packets[(m[2], seen[m[2]])] = int(m[1])
            seen[m[2]] += 1
    return packets


def observe(hits: list[str]) -> Observed:
    """The rules one probe matched, read as what svcctl's rules did to it. A DROP or REJECT
    ended its way, also after a DNAT (loadBalancerSourceRanges are checked in filter, after nat)."""
    targets = {target(line): line for line in hits}
    verdict = next((v for kind, v in (("DROP", Verdict.DROP), ("REJECT", Verdict.REJECT), ("DNAT", Verdict.DNAT)) if kind in targets), Verdict.UNTOUCHED)
    to = _TO.search(targets["DNAT"]) if verdict is Verdict.DNAT else None
    masquerade = any(line.startswith(f"-A {POSTROUTING} ") and target(line) == "MASQUERADE" for line in hits)
    return Observed(verdict, to[1] if to else None, masquerade, any("--rcheck" in line for line in hits), tuple(hits))


def probability(saved: str) -> Fraction:
    """A cascade rule's probability as iptables keeps it (a 31-bit fraction), read as the 1/k
    svcctl wrote when it is that fraction's nearest value, exactly otherwise."""
    stored = round(float(saved) * 0x80000000)
    k = round(0x80000000 / stored) if stored else 0
    return Fraction(1, k) if k and abs(stored - 0x80000000 / k) <= 1 else Fraction(stored, 0x80000000)


def cascade(nat: TableState, chain: str) -> tuple[tuple[str, Fraction], ...]:
    """Each DNAT target's chance in one SVC/SVL chain, for a client without session affinity:
    affinity checks are skipped, a rule with a probability takes that share of the connections
    that reach it, one without takes them all."""
    shares: dict[str, Fraction] = {}
    reaching = Fraction(1)
    for line in nat.chains.get(chain, ()):
        goes = target(line)
        if "--rcheck" in line or not (goes == "DNAT" or goes.startswith(f"{PREFIX}{SEP}-")):
            continue
        dnat = line if goes == "DNAT" else next((r for r in nat.chains.get(goes, ()) if target(r) == "DNAT"), "")
        to = _TO.search(dnat)
        chance = _PROBABILITY.search(line)
        taken = reaching * probability(chance[1]) if chance else reaching
        if to:
            shares[to[1]] = shares.get(to[1], Fraction(0)) + taken
        reaching -= taken
    return tuple(shares.items())


def _wait(xt: Xtables, family: Family, before: Counter[tuple[str, int]]) -> Counter[tuple[str, int]]:
    """The counts once the probe went through: every new connection's first packet passes a jump
    from a built-in chain into svcctl's (PREROUTING or OUTPUT in nat)."""
    deadline = time.monotonic() + ARRIVAL
    while True:
        now = counted(xt.save(family, counters=True))
        if sum(now.values()) > sum(before.values()) or time.monotonic() > deadline:
            time.sleep(SETTLE)
            return counted(xt.save(family, counters=True))
        time.sleep(0.001)


def probe(plan: Planned, packet: Packet, destination_local: bool, count: int, live: bool = False) -> Probed:
    """Send ``count`` probes through ``plan``'s rules (``live``: through a copy of svcctl's chains
    and jumps the kernel holds now) in a throwaway namespace, with the flavour an apply would
    use; what each one met. Raises KernelError, or IptablesRefused when iptables refuses the
    rules."""
    family = Family.of(packet.version)
    xt, saved = Saves(plan.mode).choose()
    states = parse_save(saved[family]) if live else {t: plan.tables[(family, t)] for t in TableName}

    def run() -> Probed:
        build_node(packet, destination_local)
        for table, state in states.items():
            for part in staged(table_update(family, table, state, TableState()), xt.chunk):
                xt.restore(family, render([part]))
        before = counted(xt.save(family, counters=True))
        observed = []
        for i in range(count):
            send(packet, 1, first=i)
            after = _wait(xt, family, before)
            observed.append(observe([line for (line, n), packets in after.items() if packets > before.get((line, n), 0)]))
            before = after
        dnat = next((o for o in observed if o.verdict is Verdict.DNAT), None)
        chain = next((line.split()[1] for line in dnat.rules if line.split()[1].startswith((f"{PREFIX}{SVC}-", f"{PREFIX}{SVL}-"))), "") if dnat else ""
        return Probed(tuple(observed), cascade(parse_save(xt.save(family))[TableName.NAT], chain) if chain else ())

    return in_throwaway_netns(run)
