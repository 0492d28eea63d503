"""``svcctl trace --kernel`` for nftables: the ruleset loaded into a throwaway namespace built as a
node (svcctl.trace.inject), nftables tracing turned on for the probe packets, and what ``nft
monitor trace`` reports of each one read back as a verdict, a DNAT target and a masquerade.

``nft monitor trace`` (nft 1.0.6 prints it as text only, ``-j`` is ignored) writes one line per
event: ``trace id ID FAMILY TABLE CHAIN packet: ...`` when a packet enters a chain, ``... rule
RULE (verdict V)`` for every rule that matched (a rule that only sets something says ``verdict
continue``), ``... policy accept`` at the end of a base chain.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Iterable

from ..kernel import KernelError, in_throwaway_netns
from ..trace.compare import Observed, Probed
from ..trace.inject import build_node, send
from ..trace.packet import Packet, endpoint_text
from ..trace.path import Verdict
from .frame import AFFINITY, NAT_POSTROUTING, REJECT_CHAIN
from .nft import Nft
from .objects import Family, Ruleset
from .render import render_probe_table, render_ruleset
from .transport import live_rules

PROBE_TABLE = "svcctl_probe"
NETLINK_NETFILTER, NFNLGRP_NFTRACE = 12, 9
SUBSCRIBE_TIMEOUT = 5.0
QUIET = 0.1  # seconds without a new event once every probe was seen: their ways are over
WAIT_MAX = 10.0
_LINE = re.compile(r"trace id (?P<id>\S+) (?P<family>\S+) (?P<table>\S+) (?P<chain>\S+) (?P<kind>packet:|rule|policy|verdict|return)\s*(?P<text>.*)")
_SPORT = re.compile(r"\b(?:tcp|udp|sctp) sport (\d+)")
_DNAT = re.compile(r"\bdnat( ip6?)? to (?P<target>\S+)")


@dataclass(frozen=True)
class Event:
    id: str
    table: str  # "ip svcctl"
    chain: str
    kind: str  # packet:, rule, policy, verdict, return
    text: str


def parse(lines: Iterable[str]) -> dict[str, list[Event]]:
    """Events by probe, in order: a probe is told by its source port as the first packet line of a
    trace shows it (the kernel gives a packet a new trace id when it loops back to the node
    itself); lines that are no trace event are left out."""
    traces: dict[str, list[Event]] = {}
    for line in lines:
        m = _LINE.match(line.strip())
        if m:
            event = Event(m["id"], f"{m['family']} {m['table']}", m["chain"], m["kind"], m["text"])
            traces.setdefault(event.id, []).append(event)
    probes: dict[str, list[Event]] = {}
    for events in traces.values():
        sport = next((s[1] for e in events if e.kind == "packet:" and (s := _SPORT.search(e.text))), events[0].id)
        probes.setdefault(sport, []).extend(events)
    return probes


def observe(events: list[Event], table: str) -> Observed:
    """One packet's events, read as what svcctl's rules (table ``table``) did to it."""
    rules = [e for e in events if e.kind == "rule" and e.table.split()[-1] == table]
    verdict, target, affinity = Verdict.UNTOUCHED, None, False
    for e in rules:
        dnat = _DNAT.search(e.text)
        if dnat:
            verdict, target = Verdict.DNAT, dnat["target"]
            affinity = f"@{AFFINITY}-" in e.text.split(" update ")[0]  # a lookup of the client, not only an update
        elif e.chain == REJECT_CHAIN.name:
            verdict = Verdict.REJECT
        elif e.text.endswith("(verdict drop)"):
            verdict = Verdict.DROP
    masquerade = any(e.chain == NAT_POSTROUTING.name and "masquerade" in e.text for e in rules)
    return Observed(verdict, target, masquerade, affinity, tuple(f"{e.table} {e.chain}: {_rule(e.text)}" for e in rules))


_SPREAD = "numgen"  # what _DNAT reads as the target of a big Service's map rule
# A conntrack entry: the original tuple, then the reply tuple, whose source is the DNAT target.
_ENTRY = re.compile(r"\bsport=(?P<probe>\d+) dport=\d+ .*?\bsrc=(?P<address>\S+) dst=\S+ sport=(?P<port>\d+)")


def _with_target(seen: Observed, sport: str, packet: Packet) -> Observed:
    """A probe DNATed by a map rule (``dnat to numgen random mod N map {...}``): the trace names
    no element, the conntrack entry's reply tuple does (its source is the chosen endpoint)."""
    if seen.target != _SPREAD:
        return seen
    return replace(seen, target=_conntrack_targets(packet).get(sport))


def _conntrack_targets(packet: Packet) -> dict[str, str]:
    """Probe source port -> the endpoint its connection was DNATed to, from the conntrack table."""
    family = "ipv6" if packet.version == 6 else "ipv4"
    try:
        listed = subprocess.run(
            ["conntrack", "-L", "-f", family, "-p", packet.protocol.value.lower(), "-s", packet.source],
            capture_output=True, text=True, check=False,
        ).stdout
    except FileNotFoundError:
        raise KernelError("--kernel needs the conntrack command for a Service of more than 32 endpoints (Debian's conntrack package)") from None
    return {m["probe"]: endpoint_text(m["address"], int(m["port"])) for m in map(_ENTRY.search, listed.splitlines()) if m}


def _rule(text: str) -> str:
    return re.sub(r" \(verdict continue\)$", "", text)


def probe(ruleset: Ruleset, packet: Packet, destination_local: bool, count: int, live: bool = False) -> Probed:
    """Send ``count`` probes through ``ruleset`` (``live``: through a copy of svcctl's tables
    the kernel holds now) in a throwaway namespace; what each one met. Raises KernelError when
    the kernel cannot be used, Refused when it refuses the ruleset."""
    table = ruleset.tables[0].name
    tracing = render_probe_table(PROBE_TABLE, Family.of(packet.version), packet.source, packet.destination, packet.protocol.value.lower(), packet.port)
    text = (live_rules(table) if live else render_ruleset(ruleset)) + tracing

    def run() -> Probed:
        build_node(packet, destination_local)
        nft = Nft()
        nft.run(text)
        with _Monitor() as monitor:
            send(packet, count)
            traces = parse(monitor.read(count))
        observed = tuple(_with_target(observe(events, table), sport, packet) for sport, events in traces.items())
        dnat = next((e for events in traces.values() for e in events if e.kind == "rule" and _DNAT.search(e.text)), None)
        shares = cascade(nft.query(f"list chain {dnat.table} {dnat.chain}")) if dnat else ()
        return Probed(observed, shares)

    return in_throwaway_netns(run)


def cascade(objects: list[dict[str, Any]]) -> tuple[tuple[str, Fraction], ...]:
    """Each DNAT target's chance in a listed chain (``nft -j list chain``), for a client without
    session affinity: rules that look the client up in a set are skipped, a rule with ``numgen
    random mod N`` takes 1/N of the connections that reach it, one without takes them all."""
    shares: dict[str, Fraction] = {}
    reaching = Fraction(1)
    for o in objects:
        exprs = o.get("rule", {}).get("expr", [])
        matches = [e["match"] for e in exprs if "match" in e]
        dnat = next((e["dnat"] for e in exprs if "dnat" in e), None)
        if dnat is None or any(isinstance(m["right"], str) and m["right"].startswith("@") for m in matches):
            continue
        spread = dnat["addr"].get("map") if isinstance(dnat["addr"], dict) else None
        if spread is not None:  # numgen random mod N map {i : addr . port}: 1/N each
            elements = spread["data"]["set"]
            for _, data in elements:
                target = endpoint_text(*data["concat"])
                shares[target] = shares.get(target, Fraction(0)) + reaching / len(elements)
            reaching = Fraction(0)
            continue
        mod = next((m["left"]["numgen"]["mod"] for m in matches if isinstance(m["left"], dict) and "numgen" in m["left"]), None)
        taken = reaching / mod if mod else reaching
        target = endpoint_text(dnat["addr"], dnat["port"])
        shares[target] = shares.get(target, Fraction(0)) + taken
        reaching -= taken
    return tuple(shares.items())


class _Monitor:
    """``nft monitor trace`` in the current namespace, ready once it has joined the trace group."""

    def __enter__(self) -> "_Monitor":
        try:
            self.proc = subprocess.Popen(["nft", "monitor", "trace"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise KernelError("--kernel needs the nft command (Debian's nftables package)") from None
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while not _subscribed():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise KernelError("nft monitor trace did not start")
            time.sleep(0.01)
        return self

    def read(self, packets: int) -> list[str]:
        """Lines until ``packets`` packets were seen and then nothing came for a moment."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        text, ids = "", set[str]()
        deadline = time.monotonic() + WAIT_MAX
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(QUIET):
                    if len(ids) >= packets:
                        break
                    continue
                chunk = os.read(fd, 1 << 16).decode(errors="replace")
                if not chunk:
                    break
                text += chunk
                ids = set(parse(text.splitlines()))  # probes seen
        return text.splitlines()

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.communicate()


def _subscribed() -> bool:
    """Whether a netfilter netlink socket of this namespace has joined the trace group
    (/proc/net/netlink lists each socket's protocol and its first 32 groups as a bit mask)."""
    with open("/proc/net/netlink") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1]) == NETLINK_NETFILTER and int(fields[3], 16) & (1 << (NFNLGRP_NFTRACE - 1)):
                return True
    return False
