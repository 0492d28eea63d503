"""svcctl's part of an iptables table as lines: its chains with their rules, and the jumps from
built-in chains into them. The planned state (rendered from the plan) and the live one (read
from ``iptables-save``) have the same shape, so one comparison serves apply, rollback, delete
and diff.

svcctl writes every rule in the form iptables-save prints it (parts in its order, host
addresses with /32, comments quoted as it quotes them), with one exception: the cascade's
probability, which svcctl writes as kube-proxy does (``0.3333333333``) and the kernel keeps as a
31-bit fraction (``0.33333333349``). ``saved_form`` turns the one into the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .frame import PREFIX, TableName

_PROBABILITY = re.compile(r"(--probability )(\S+)")
_DNAT = re.compile(r" -p (\w+) .*-j DNAT --to-destination \[?([0-9a-f.:]+?)\]?:(\d+)$")


@dataclass(frozen=True)
class TableState:
    """``chains``: svcctl's chains (name -> its rule lines ``-A NAME ...``, in order);
    ``jumps``: (built-in chain, rule after ``-A CHAIN ``) of every rule in a built-in chain that
    leads to one of svcctl's, in order."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    jumps: tuple[tuple[str, str], ...] = ()


def _saved_probability(match: re.Match[str]) -> str:
    # libxt_statistic: stored as lround(p * 2^31), printed as that / 2^31 with %.11f.
    stored = int(float(match[2]) * 0x80000000 + 0.5)
    return f"{match[1]}{stored / 0x80000000:.11f}"


def saved_form(line: str) -> str:
    """A rule line as iptables-save prints it back."""
    return _PROBABILITY.sub(_saved_probability, line) if "--probability " in line else line


def target(line: str) -> str:
    """The chain a rule jumps or goes to ("" for none). iptables-save prints the target last,
    so the last ``-j``/``-g`` is the rule's, not text inside a comment before it."""
    at = max(line.rfind(" -j "), line.rfind(" -g "))
    return line[at + 4 :].split(" ", 1)[0] if at >= 0 else ""


def parse_save(text: str) -> dict[TableName, TableState]:
    """svcctl's part of the nat and filter tables in ``iptables-save`` output. A table that is
    not there is an empty state."""
    states = {t: TableState() for t in TableName}
    wanted = {t.value: t for t in TableName}
    table: TableName | None = None
    builtin: set[str] = set()
    chains: dict[str, list[str]] = {}
    jumps: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("*"):
            table = wanted.get(line[1:])
            builtin, chains, jumps = set(), {}, []
        elif table is None:
            continue
        elif line.startswith(":"):
            name, policy = line[1:].split(" ", 2)[:2]
            if policy != "-":
                builtin.add(name)
            elif name.startswith(PREFIX):
                chains[name] = []
        elif line.startswith("-A "):
            end = line.index(" ", 3)
            chain = line[3:end]
            if chain in chains:
                chains[chain].append(line)
            elif chain in builtin and target(line).startswith(PREFIX):
                jumps.append((chain, line[end + 1 :]))
        elif line == "COMMIT":
            states[table] = TableState({name: tuple(lines) for name, lines in chains.items()}, tuple(jumps))
    return states


def present(text: str) -> set[TableName]:
    """The tables of ``iptables-save`` output: those that exist in the kernel."""
    return {t for t in TableName if f"\n*{t.value}\n" in f"\n{text}"}


def udp_targets(state: TableState) -> set[tuple[str, int]]:
    """The UDP endpoints the chains DNAT to."""
    found = set()
    for lines in state.chains.values():
        for line in lines:
            if "-j DNAT" in line:
                match = _DNAT.search(line)
                if match and match[1] == "udp":
                    found.add((match[2], int(match[3])))
    return found


def listing(state: TableState) -> list[str]:
    """The state as diff compares it: the jumps in their order, then each chain (``:NAME``) and
    its rules, chains sorted by name (iptables-save's order), rules in saved form."""
    out = [f"-A {builtin} {spec}" for builtin, spec in state.jumps]
    for name in sorted(state.chains):
        out.append(f":{name}")
        out += [saved_form(line) for line in state.chains[name]]
    return out
