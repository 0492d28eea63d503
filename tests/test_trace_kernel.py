"""``svcctl trace --kernel`` for nftables (svcctl/nftables/nftrace.py, svcctl/trace/inject.py,
svcctl/trace/compare.py): reading ``nft monitor trace`` and a listed cascade (no root), and, as
root, probes sent through compiled golden rulesets in throwaway namespaces: the kernel agrees
with every trace, and disagrees, saying how, once the ruleset is altered."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from svcctl.backends import Compiled
from svcctl.model import Protocol
from svcctl.nftables.nftrace import cascade, observe, parse
from svcctl.nftables.objects import Ruleset
from svcctl.options import build_options
from svcctl.pipeline import compile_rules
from svcctl.problems import InvalidInput
from svcctl.sources import read_config, read_manifests
from svcctl.trace import Trace, Verdict, packet, trace
from svcctl.trace.compare import Observed, Probed, compare
from svcctl.trace.inject import datagram
from svcctl.trace.kernel import can_probe, check

GOLDEN = Path(__file__).resolve().parent.parent / "golden"

# What `nft monitor trace` printed for one probe (nft 1.0.6): a pod's connection to a ClusterIP
# that the cascade's second rule sent on.
MONITOR = """\
trace id 6c1b0cd5 inet svcctl_probe prerouting packet: iif "probe-in" ether saddr 3a:61:5b:2e:c7:4e ether daddr 26:8b:b2:ee:0d:ea ip saddr 10.244.1.11 ip daddr 10.96.0.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 40001 ip length 40 tcp sport 40001 tcp dport 80 tcp flags == syn tcp window 64240
trace id 6c1b0cd5 inet svcctl_probe prerouting rule ip saddr 10.244.1.11 ip daddr 10.96.0.10 meta l4proto tcp th dport 80 meta nftrace set 1 (verdict continue)
trace id 6c1b0cd5 inet svcctl_probe prerouting policy accept
trace id 6c1b0cd5 ip svcctl nat-prerouting packet: iif "probe-in" ether saddr 3a:61:5b:2e:c7:4e ether daddr 26:8b:b2:ee:0d:ea ip saddr 10.244.1.11 ip daddr 10.96.0.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 40001 ip length 40 tcp sport 40001 tcp dport 80 tcp flags == syn tcp window 64240
trace id 6c1b0cd5 ip svcctl nat-prerouting rule ip daddr . meta l4proto . th dport vmap @service-ips (verdict goto svc-AHUF2XY4-default/web/tcp/http)
trace id 6c1b0cd5 ip svcctl svc-AHUF2XY4-default/web/tcp/http rule meta l4proto tcp numgen random mod 3 0 dnat to 10.244.1.12:8080 (verdict accept)
trace id 6c1b0cd5 ip svcctl filter-forward packet: iif "probe-in" oif "sink-out" ether saddr 3a:61:5b:2e:c7:4e ether daddr 26:8b:b2:ee:0d:ea ip saddr 10.244.1.11 ip daddr 10.244.1.12 ip dscp cs0 ip ecn not-ect ip ttl 63 ip id 40001 ip length 40 tcp sport 40001 tcp dport 8080 tcp flags == syn tcp window 64240
trace id 6c1b0cd5 ip svcctl filter-forward rule ct state new jump endpoints-check (verdict jump endpoints-check)
trace id 6c1b0cd5 ip svcctl endpoints-check verdict continue
trace id 6c1b0cd5 ip svcctl filter-forward policy accept
trace id 6c1b0cd5 ip svcctl nat-postrouting packet: iif "probe-in" oif "sink-out" ip saddr 10.244.1.11 ip daddr 10.244.1.12 ip dscp cs0 ip ecn not-ect ip ttl 63 ip id 40001 ip length 40 tcp sport 40001 tcp dport 8080 tcp flags == syn tcp window 64240
trace id 6c1b0cd5 ip svcctl nat-postrouting policy accept
trace id 0aa1 ip svcctl filter-output packet: oif "lo" ip saddr 192.0.2.1 ip daddr 127.0.0.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 40002 ip length 40 tcp sport 40002 tcp dport 30000 tcp flags == syn tcp window 64240
trace id 0aa1 ip svcctl filter-output rule ct state new jump endpoints-check (verdict jump endpoints-check)
trace id 0bb2 ip svcctl filter-input packet: iif "lo" ip saddr 192.0.2.1 ip daddr 127.0.0.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 40002 ip length 40 tcp sport 40002 tcp dport 30000 tcp flags == syn tcp window 64240
trace id 0bb2 ip svcctl reject-chain rule reject with tcp reset (verdict drop)
"""


def test_monitor_lines_are_read_per_probe() -> None:
    probes = parse(MONITOR.splitlines() + ["", "something else"])
    assert list(probes) == ["40001", "40002"]  # a packet looped back to the node keeps its probe
    first = observe(probes["40001"], "svcctl")
    assert first == Observed(
        Verdict.DNAT, "10.244.1.12:8080", False, False,
        (
            "ip svcctl nat-prerouting: ip daddr . meta l4proto . th dport vmap @service-ips (verdict goto svc-AHUF2XY4-default/web/tcp/http)",
            "ip svcctl svc-AHUF2XY4-default/web/tcp/http: meta l4proto tcp numgen random mod 3 0 dnat to 10.244.1.12:8080 (verdict accept)",
            "ip svcctl filter-forward: ct state new jump endpoints-check (verdict jump endpoints-check)",
        ),
    )
    assert observe(probes["40002"], "svcctl").verdict is Verdict.REJECT
    # Another table's rules are not svcctl's.
    assert observe(probes["40001"], "other").verdict is Verdict.UNTOUCHED


def test_observe_reads_masquerade_drop_and_affinity() -> None:
    lines = [
        "trace id 1 ip svcctl svc-X rule ip saddr @aff-ABCDEFGH-ns/s/tcp/80/10.0.0.1-80 update @aff-ABCDEFGH-ns/s/tcp/80/10.0.0.1-80 { ip saddr timeout 10s } meta l4proto tcp dnat to 10.0.0.1:80 (verdict accept)",
        "trace id 1 ip svcctl nat-postrouting rule ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random (verdict accept)",
        "trace id 2 ip6 svcctl svc-Y rule meta l4proto tcp numgen random mod 2 0 update @aff-X { ip6 saddr timeout 10s } dnat to [fd00::1]:80 (verdict accept)",
        "trace id 3 ip svcctl filter-prerouting rule ct state new ip daddr . meta l4proto . th dport @firewall-ips ip daddr . meta l4proto . th dport . ip saddr != @firewall-allow drop (verdict drop)",
    ]
    one, two, three = (observe(events, "svcctl") for events in parse(lines).values())
    assert (one.verdict, one.target, one.masquerade, one.affinity) == (Verdict.DNAT, "10.0.0.1:80", True, True)
    assert (two.target, two.affinity) == ("[fd00::1]:80", False)  # updates the set, does not look the client up
    assert three.verdict is Verdict.DROP


def test_cascade_from_a_listed_chain() -> None:
    def rule(*exprs: dict) -> dict:
        return {"rule": {"family": "ip", "table": "svcctl", "chain": "svc-X", "expr": list(exprs)}}

    l4 = {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}

    def mod(n: int) -> dict:
        return {"match": {"op": "==", "left": {"numgen": {"mode": "random", "mod": n, "offset": 0}}, "right": 0}}

    affinity = {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@aff-X"}}
    listed = [
        {"chain": {"name": "svc-X"}},
        rule(affinity, l4, {"dnat": {"addr": "10.0.0.9", "port": 80}}),  # returning clients only
        rule(l4, mod(3), {"dnat": {"addr": "10.0.0.1", "port": 80}}),
        rule(l4, mod(3), {"dnat": {"addr": "10.0.0.2", "port": 80}}),
        rule(l4, {"dnat": {"addr": "fd00::3", "port": 80, "family": "ip6"}}),
    ]
    assert cascade(listed) == (("10.0.0.1:80", Fraction(1, 3)), ("10.0.0.2:80", Fraction(2, 9)), ("[fd00::3]:80", Fraction(4, 9)))
    # A big Service's chain: one rule, numgen random mod N map {i : addr . port}.
    spread = {"dnat": {"family": "ip6", "addr": {"map": {
        "key": {"numgen": {"mode": "random", "mod": 3, "offset": 0}},
        "data": {"set": [[0, {"concat": ["fd00::1", 80]}], [1, {"concat": ["fd00::2", 80]}], [2, {"concat": ["fd00::3", 80]}]]},
    }}}}
    assert cascade([{"chain": {"name": "svc-X"}}, rule(affinity, l4, {"dnat": {"addr": "fd00::9", "port": 80}}), rule(l4, spread)]) == (
        ("[fd00::1]:80", Fraction(1, 3)), ("[fd00::2]:80", Fraction(1, 3)), ("[fd00::3]:80", Fraction(1, 3)),
    )


def test_every_back_end_has_a_probe() -> None:
    can_probe("nftables")
    can_probe("iptables")
    with pytest.raises(InvalidInput) as err:
        can_probe("ebpf")
    assert err.value.lines() == ["command line: --kernel: only the nftables and iptables back end can run a probe through its rules, not ebpf"]


def test_probe_packets_carry_valid_checksums() -> None:
    import struct

    from svcctl.trace.inject import _checksum

    for proto in Protocol:
        for to, source in (("10.96.0.10:80", "10.244.1.2"), ("[fd00:10:96::10]:80", "fd00:10:244::2")):
            probe = packet(to, source, proto, ())
            d = datagram(probe, 40000)
            if probe.version == 6:
                header, body = d[:40], d[40:]
                pseudo = header[8:40] + struct.pack("!IxxxB", len(body), header[6])
            else:
                assert _checksum(d[:20]) == 0
                header, body = d[:20], d[20:]
                pseudo = header[12:20] + struct.pack("!BBH", 0, header[9], len(body))
            if proto is not Protocol.SCTP:
                assert _checksum(pseudo + body) == 0, (proto, to)
            assert struct.unpack("!HH", body[:4]) == (40000, 80)


# ---- the kernel (root) ---------------------------------------------------------------------------


def _kernel_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "probes need root (network namespaces)"
    for tool in ("nft", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        import nftables  # noqa: F401
    except ImportError:
        return "no nftables Python binding"
    return None


kernel = pytest.mark.skipif(_kernel_skip_reason() is not None, reason=_kernel_skip_reason() or "")


def _compile(case: str) -> tuple[object, Compiled, object]:
    options = build_options({}, read_config(str(GOLDEN / case / "options.yaml")))
    _, plan, compiled = compile_rules(read_manifests([str(GOLDEN / case / "manifest.yaml")]), options)
    return plan, compiled, options


def _trace(case: str, to: str, source: str | None, proto: Protocol = Protocol.TCP) -> tuple[Trace, Compiled]:
    plan, compiled, options = _compile(case)
    return trace(plan, packet(to, source, proto, options.cluster_cidrs)), compiled  # type: ignore[arg-type, attr-defined]


# (golden case, --to, --from, protocol): every verdict, every path, both families, all three
# protocols, pods, outside clients and the node itself, hairpin and affinity.
AGREEMENT = [
    ("clusterip-cascade", "10.96.0.10:80", None, Protocol.TCP),
    ("clusterip-cascade", "10.96.0.10:80", "10.244.1.11", Protocol.TCP),  # hairpin
    ("clusterip-cascade", "10.96.0.10:81", None, Protocol.TCP),  # no such port: reject
    ("clusterip-cascade", "10.96.0.10:80", "node", Protocol.UDP),  # the same, from the node
    ("clusterip-cascade", "10.96.0.99:80", "10.244.1.11", Protocol.TCP),  # unallocated: drop
    ("clusterip-cascade", "192.0.2.9:80", None, Protocol.TCP),  # untouched
    ("clusterip-cascade", "127.0.0.1:30000", "node", Protocol.TCP),  # loopback: untouched
    ("clusterip-cascade", "10.96.0.10:80", "node:127.0.0.1", Protocol.TCP),  # DNATed, then dropped by routing: no masquerade
    ("etp-local", "192.168.1.1:30081", "node:127.0.0.1", Protocol.TCP),  # the same by a NodePort
    ("etp-local", "198.51.100.80:80", None, Protocol.TCP),
    ("etp-local", "198.51.100.80:80", "10.244.3.3", Protocol.TCP),
    ("etp-local", "192.168.1.1:30081", "node", Protocol.TCP),
    ("etp-local-no-local-endpoints", "198.51.100.90:80", None, Protocol.TCP),  # drop
    ("masquerade-all", "10.96.0.60:80", "10.244.1.5", Protocol.TCP),
    ("masquerade-all", "198.51.100.62:80", None, Protocol.TCP),  # externalTrafficPolicy Local: source kept
    ("lb-source-ranges", "198.51.100.50:443", None, Protocol.TCP),  # refused: drop
    ("lb-source-ranges", "198.51.100.50:443", "10.1.2.3", Protocol.TCP),
    ("no-endpoints", "10.96.0.130:80", None, Protocol.TCP),  # reject
    ("no-endpoints", "10.96.0.131:53", "10.244.1.5", Protocol.UDP),
    ("no-endpoints", "192.168.5.5:30130", "node", Protocol.TCP),
    ("protocols", "10.96.0.10:2905", None, Protocol.SCTP),
    ("protocols", "192.168.9.9:30053", "node", Protocol.UDP),
    ("dual-stack", "[fd00:10:96::171]:80", "fd00:10:244:1::5", Protocol.TCP),
    ("dual-stack", "[2001:db8::5]:30171", "node", Protocol.TCP),
    ("dual-stack", "[::1]:30171", "node:::1", Protocol.TCP),  # loopback: untouched
    ("dual-stack", "[fd00::5]:30171", "node:fd00::5", Protocol.TCP),
    ("session-affinity", "10.96.0.120:80", None, Protocol.TCP),
    ("terminating-fallback", "10.96.0.140:80", None, Protocol.TCP),
    ("nodeport-addresses", "192.168.1.1:30080", None, Protocol.TCP),  # outside the ranges: untouched
    ("nodeport-addresses", "192.168.50.5:30080", None, Protocol.TCP),
    ("big-service", "10.96.0.100:80", None, Protocol.TCP),  # one numgen map rule: 1/40 each
    ("big-service", "[fd00:10:96::100]:80", "fd00:244:1::99", Protocol.TCP),
    ("big-service", "192.168.1.1:30100", None, Protocol.TCP),  # externalTrafficPolicy Local: 1/34 each
]


@kernel
@pytest.mark.parametrize("case, to, source, proto", AGREEMENT, ids=[f"{a[0]}-{a[1]}-{a[2]}-{a[3].value}" for a in AGREEMENT])
def test_the_kernel_agrees(case: str, to: str, source: str | None, proto: Protocol) -> None:
    t, compiled = _trace(case, to, source, proto)
    result = check(compiled, t)
    assert result.differences == ()
    assert result.probes and all(p.verdict is t.verdict for p in result.probes)
    if t.verdict is Verdict.DNAT:
        assert dict(result.probed.shares) == {c.address: c.probability for c in t.endpoints}


def _altered(compiled: Compiled, **change: object) -> Compiled:
    """The compiled ruleset with its first endpoint chain (or, given ``external``, the first
    external chain) changed."""
    rules: Ruleset = compiled.rules
    table = rules.tables[0]
    if "picks" in change:
        first = replace(table.endpoint_chains[0], picks=change["picks"])
        table = replace(table, endpoint_chains=(first, *table.endpoint_chains[1:]))
    if "external" in change:
        first = replace(table.external_chains[0], **change["external"])  # type: ignore[arg-type]
        table = replace(table, external_chains=(first, *table.external_chains[1:]))
    return replace(compiled, rules=replace(rules, tables=(table, *rules.tables[1:])))


@kernel
def test_the_kernel_disagrees_with_an_altered_cascade() -> None:
    t, compiled = _trace("clusterip-cascade", "10.96.0.10:80", "10.244.1.2")
    picks = compiled.rules.tables[0].endpoint_chains[0].picks
    # Every rule "mod 4": the same endpoints, other chances (1/4, 3/16, 9/64, 27/64).
    skewed = check(_altered(compiled, picks=tuple(p._replace(modulus=4) if p.modulus else p for p in picks)), t)
    assert "the kernel's rules give 10.244.2.13:8080 a chance of 9/64, the trace 1/4" in skewed.differences
    # One endpoint swapped for another address.
    swapped = check(_altered(compiled, picks=(*picks[:-1], picks[-1]._replace(target="10.244.9.9:8080"))), t)
    assert any(d.endswith("the kernel sent it to 10.244.9.9:8080, not one of the trace's endpoints") for d in swapped.differences), swapped.differences
    assert "the kernel's rules give 10.244.9.9:8080 a chance of 1/4, the trace 0" in swapped.differences


@kernel
def test_the_kernel_disagrees_on_masquerade() -> None:
    t, compiled = _trace("etp-cluster", "198.51.100.70:80", None)
    assert t.masquerade
    unmarked = check(_altered(compiled, external={"mark_all": False}), t)
    assert not unmarked.agrees
    assert any(d.endswith("the kernel kept the source of a connection to 10.244.1.71:8080, the trace says the opposite") for d in unmarked.differences), unmarked.differences


def test_compare_says_what_differs() -> None:
    t, _ = _trace("session-affinity", "10.96.0.120:80", None)
    first = t.endpoints[0].address
    spread = Probed(tuple(Observed(Verdict.DNAT, c.address, True, i > 0, ()) for i, c in enumerate(t.endpoints)))
    assert compare(t, spread).differences == ("session affinity: one client went to 3 endpoints",)
    unpinned = Probed((Observed(Verdict.DNAT, first, True, False, ()),) * 2)
    assert compare(t, unpinned).differences == ("probe 2: session affinity did not send the client back to its endpoint",)
    dropped = Probed((Observed(Verdict.DROP, None, False, False, ()),) * 3)
    assert compare(t, dropped).differences == ("3 of 3 probes: the kernel's verdict is drop, the trace's dnat",)
