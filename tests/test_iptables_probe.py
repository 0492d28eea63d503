"""Reading what a probe met from iptables' packet counters (svcctl.iptables.probe), without root:
the counts before and after, a verdict from the rules that matched, the kernel's probabilities
read back as the cascade svcctl wrote."""

from __future__ import annotations

from fractions import Fraction

from svcctl.iptables.probe import cascade, counted, observe, probability
from svcctl.iptables.state import TableState
from svcctl.trace.path import Verdict

SVC = "SVCCTL-SVC-KHN6ECMTVM4XDEFO"
SEP = "SVCCTL-SEP-FTYIGDHSVOWYUDAY"
NAT = TableState({
    SVC: (
        f"-A {SVC} -d 10.97.26.104/32 -p tcp -m comment --comment \"shop/web:http/tcp cluster IP\" -m tcp --dport 80 -j SVCCTL-MASQ-OUTSIDE",
        f"-A {SVC} -m comment --comment \"shop/web:http/tcp -> 10.244.1.3:8080\" -m recent --rcheck --seconds 600 --reap --name {SEP} --mask 255.255.255.255 --rsource -j {SEP}",
        f"-A {SVC} -p tcp -m comment --comment \"shop/web:http/tcp -> 10.244.1.2:8080\" -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.244.1.2:8080",
        f"-A {SVC} -m comment --comment \"shop/web:http/tcp -> 10.244.1.3:8080\" -m statistic --mode random --probability 0.50000000000 -j {SEP}",
        f"-A {SVC} -p tcp -m comment --comment \"shop/web:http/tcp -> 10.244.1.4:8080\" -j DNAT --to-destination 10.244.1.4:8080",
    ),
    SEP: (f"-A {SEP} -p tcp -m comment --comment \"shop/web:http/tcp\" -m recent --set --name {SEP} --mask 255.255.255.255 --rsource -j DNAT --to-destination 10.244.1.3:8080",),
})


def test_counts_per_rule_and_copy() -> None:
    text = "*nat\n:PREROUTING ACCEPT [3:180]\n[2:120] -A PREROUTING -j X\n[1:60] -A PREROUTING -j X\n[0:0] -A X -j RETURN\nCOMMIT\n"
    assert counted(text) == {("-A PREROUTING -j X", 0): 2, ("-A PREROUTING -j X", 1): 1, ("-A X -j RETURN", 0): 0}


def test_verdicts() -> None:
    dnat = NAT.chains[SEP][0]
    masquerade = "-A SVCCTL-POSTROUTING -m comment --comment \"svcctl service traffic requiring SNAT\" -j MASQUERADE --random-fully"
    seen = observe([NAT.chains[SVC][1], dnat, masquerade])
    assert (seen.verdict, seen.target, seen.masquerade, seen.affinity) == (Verdict.DNAT, "10.244.1.3:8080", True, True)
    # DNATed, then dropped by the source-range check in filter: dropped.
    dropped = observe([dnat, "-A SVCCTL-FW-VLOCYNBYR6WZMVPI -m comment --comment \"x\" -j DROP"])
    assert (dropped.verdict, dropped.target, dropped.masquerade) == (Verdict.DROP, None, False)
    assert observe(["-A SVCCTL-SERVICES -d 10.96.0.53/32 -p udp -j REJECT --reject-with icmp-port-unreachable"]).verdict is Verdict.REJECT
    assert observe(["-A PREROUTING -m comment --comment \"svcctl service portals\" -j SVCCTL-SERVICES"]).verdict is Verdict.UNTOUCHED


def test_probabilities_as_svcctl_wrote_them() -> None:
    assert [probability(p) for p in ("0.50000000000", "0.33333333349", "0.14285714272", "0.00100000016")] == [
        Fraction(1, 2), Fraction(1, 3), Fraction(1, 7), Fraction(1, 1000)]
    assert probability("0.40000000037") == Fraction(858993460, 2**31)  # not 1/k: kept exact


def test_the_kernels_cascade() -> None:
    assert cascade(NAT, SVC) == (("10.244.1.2:8080", Fraction(1, 3)), ("10.244.1.3:8080", Fraction(1, 3)), ("10.244.1.4:8080", Fraction(1, 3)))
