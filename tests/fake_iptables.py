"""An in-memory iptables table set for tests without root: it loads iptables-save text (as the
kernel printed it, tests/kernel/iptables-*.json), applies iptables-restore --noflush input as the
kernel does (each table all or nothing; a chain line creates or empties that chain only; -I, -D,
-X refused where iptables refuses them), and prints iptables-save text again."""

from __future__ import annotations

from dataclasses import dataclass, field

# The kernel keeps a probability as a 31-bit fraction and iptables-save prints that: svcctl's
# function for it is proven against the real kernel by tests/test_golden_iptables.py.
from svcctl.iptables.state import saved_form

# Targets that are not chains (those svcctl and the recorded foreign rules use).
TARGETS = {"ACCEPT", "DROP", "RETURN", "REJECT", "DNAT", "SNAT", "MASQUERADE", "MARK", "LOG"}


class FakeRefused(Exception):
    pass


@dataclass
class FakeTable:
    policies: dict[str, str] = field(default_factory=dict)  # built-in chain -> policy
    chains: dict[str, list[str]] = field(default_factory=dict)  # every chain -> its rules (after "-A CHAIN ")

    def copy(self) -> "FakeTable":
        return FakeTable(dict(self.policies), {name: list(rules) for name, rules in self.chains.items()})


def _target(spec: str) -> str:
    at = max(spec.rfind("-j "), spec.rfind("-g "))
    return spec[at + 3 :].split(" ", 1)[0] if at >= 0 and (at == 0 or spec[at - 1] == " ") else ""


class FakeIptables:
    """One family's tables."""

    def __init__(self, saved: str = "") -> None:
        self.tables: dict[str, FakeTable] = {}
        self.restore(saved, from_save=True)

    def restore(self, text: str, from_save: bool = False) -> None:
        """Apply iptables-restore --noflush input; raises FakeRefused at the first error, with
        the tables committed before the failing one kept (as iptables does)."""
        table: FakeTable | None = None
        name = ""
        for number, line in enumerate(text.splitlines(), 1):
            if not line or line.startswith("#"):
                continue
            if line.startswith("*"):
                name = line[1:]
                table = self.tables.get(name, FakeTable()).copy()
            elif line == "COMMIT":
                assert table is not None
                self._check(table, number)
                self.tables[name] = table
                table = None
            else:
                assert table is not None, line
                self._line(table, line, number, from_save)

    def _line(self, table: FakeTable, line: str, number: int, from_save: bool) -> None:
        if line.startswith(":"):
            chain, policy = line[1:].split(" ")[:2]
            if policy != "-":
                table.policies[chain] = policy
                table.chains.setdefault(chain, [])
            else:
                table.chains[chain] = []  # created, or emptied
            return
        verb, chain, rest = (line.split(" ", 2) + [""])[:3]
        if chain not in table.chains:
            raise FakeRefused(f"line {number}: no chain {chain}")
        rules = table.chains[chain]
        if verb == "-A":
            rules.append(saved_form(rest))
        elif verb == "-I":
            position, spec = rest.split(" ", 1)
            rules.insert(int(position) - 1, saved_form(spec))
        elif verb == "-D":
            if rest not in rules:
                raise FakeRefused(f"line {number}: no such rule in {chain}")
            rules.remove(rest)  # the first copy
        elif verb == "-X":
            if chain in table.policies or any(_target(r) == chain for rules_ in table.chains.values() for r in rules_):
                raise FakeRefused(f"line {number}: chain {chain} in use")
            if table.chains[chain]:
                raise FakeRefused(f"line {number}: chain {chain} not empty")
            del table.chains[chain]
        else:
            raise AssertionError(line)

    @staticmethod
    def _check(table: FakeTable, number: int) -> None:
        for rules in table.chains.values():
            for spec in rules:
                target = _target(spec)
                if target and target not in TARGETS and target not in table.chains:
                    raise FakeRefused(f"line {number}: chain {target} does not exist")

    def save(self) -> str:
        """As iptables-save prints it: built-in chains first, then the others sorted by name."""
        out = []
        for name, table in self.tables.items():
            out.append(f"*{name}")
            user = sorted(c for c in table.chains if c not in table.policies)
            out += [f":{c} {p} [0:0]" for c, p in table.policies.items()] + [f":{c} - [0:0]" for c in user]
            for chain in (*table.policies, *user):
                out += [f"-A {chain} {spec}" for spec in table.chains[chain]]
            out.append("COMMIT")
        return "\n".join(out) + "\n"
