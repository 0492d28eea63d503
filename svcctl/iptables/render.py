"""iptables objects as text, through the Jinja2 templates under ``templates/iptables/``: the
planned state of each table (its chains' rule lines and its jumps), and table updates as
iptables-restore input. Rendering cannot fail on valid input: every string was validated or
generated before."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import jinja2

from ..templating import environment
from .decide import TableUpdate, table_update
from .frame import TableName
from .objects import Family, Ruleset
from .state import TableState
from .xtables import Mode

_BARE = re.compile(r"[A-Za-z0-9_-]+\Z")


def quoted(comment: str) -> str:
    """A comment as iptables-save prints it: bare when it is one word of [A-Za-z0-9_-], else in
    double quotes with \\, " and ' escaped."""
    if _BARE.match(comment):
        return comment
    return '"' + comment.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'") + '"'


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = environment("iptables")
    env.filters["quoted"] = quoted
    return env


@dataclass(frozen=True)
class Planned:
    """A ruleset as the tables should hold it (svcctl.backends.Compiled.rules for iptables),
    and the flavour that is to write it (--iptables-mode)."""

    mode: Mode
    tables: dict[tuple[Family, TableName], TableState]  # in the order an apply commits them
    udp_endpoints: frozenset[tuple[str, int]]  # of both families
    owners: dict[str, str]  # chain name -> the Service port it was made for (PortRef.ident)
    warnings: tuple[str, ...]

    def empty(self) -> dict[tuple[Family, TableName], TableState]:
        return {key: TableState() for key in self.tables}


def planned(ruleset: Ruleset, mode: Mode) -> Planned:
    """Render every rule once; the lines are what an apply compares and sends."""
    template = _environment().get_template("rules.j2")
    tables: dict[tuple[Family, TableName], TableState] = {}
    owners: dict[str, str] = {}
    for fr in ruleset.families:
        for t in fr.tables:
            blocks = [(f"-A {c.name}", c.rules) for c in t.chains] + [(f"-A {j.builtin}", (j.rule,)) for j in t.jumps]
            lines = template.render(blocks=blocks).splitlines()
            chains, at = {}, 0
            for c in t.chains:
                chains[c.name] = tuple(lines[at : at + len(c.rules)])
                at += len(c.rules)
                if c.owner is not None:
                    owners[c.name] = c.owner.ident
            jumps = tuple((j.builtin, line[len(j.builtin) + 4 :]) for j, line in zip(t.jumps, lines[at:]))
            tables[(fr.family, t.name)] = TableState(chains, jumps)
    udp = frozenset(e for fr in ruleset.families for e in fr.udp_endpoints)
    return Planned(mode, tables, udp, owners, ruleset.warnings)


def render(updates: Iterable[TableUpdate], header: bool = False) -> str:
    """Table updates as iptables-restore input; ``header`` (a whole ruleset): a comment line
    before each family's tables, which go to that family's iptables-restore."""
    return _environment().get_template("restore.j2").render(updates=tuple(updates), header=header)


def render_ruleset(plan: Planned) -> str:
    """What an apply sends to a node without svcctl's rules (``svcctl compile``)."""
    empty = plan.empty()
    return render((table_update(f, t, state, empty[(f, t)]) for (f, t), state in plan.tables.items()), header=True)
