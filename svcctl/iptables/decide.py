"""The apply decision: what to send so that a table holds svcctl's planned chains and jumps,
given what it holds now. Pure: no kernel here; tests feed it recorded ``iptables-save`` output.

Per table, one ``iptables-restore --noflush`` input (svcctl.iptables.state for the shapes):
- a chain of svcctl's whose rules differ from the planned ones, or that is missing, is declared
  (created, or emptied: with --noflush only declared chains are emptied) and written in full;
  a chain whose rules are the planned ones is not mentioned at all;
- a chain of svcctl's that is no longer planned is emptied and deleted;
- each planned jump from a built-in chain is there exactly once: a missing one is inserted at
  the top, one that is there is never moved, extra copies and jumps svcctl no longer plans are
  deleted; other rules of the built-in chains are never touched;
- nothing differs: nothing is sent.

The same comparison undoes an apply (planned: the state read before it) and deletes
svcctl's rules (planned: nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .frame import TableName
from .objects import Family
from .state import TableState, saved_form, target


@dataclass(frozen=True)
class TableUpdate:
    family: Family
    table: TableName
    chains: tuple[tuple[str, tuple[str, ...]], ...]  # chains written (created, or emptied and refilled), with their rules
    created: frozenset[str]  # those of them that do not exist yet
    delete_jumps: tuple[tuple[str, str], ...]  # (built-in chain, rule)
    insert_jumps: tuple[tuple[str, str], ...]  # each inserted at the top, in this order
    delete_chains: tuple[str, ...]  # emptied, then deleted

    def __bool__(self) -> bool:
        return bool(self.chains or self.delete_chains or self.delete_jumps or self.insert_jumps)

    @property
    def declare(self) -> tuple[str, ...]:
        """The chains the input names (creates, or empties): those written, then those deleted."""
        return (*(name for name, _ in self.chains), *self.delete_chains)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(line for _, lines in self.chains for line in lines)

    @property
    def written(self) -> int:
        return len(self.chains)


def table_update(family: Family, table: TableName, planned: TableState, live: TableState, whole: bool = False) -> TableUpdate:
    """``whole``: write every planned chain, also those that hold the planned rules already."""
    written = [
        name for name, lines in planned.chains.items()
        if whole or (have := live.chains.get(name)) is None or len(have) != len(lines) or any(saved_form(a) != b for a, b in zip(lines, have))
    ]
    # Chains that jump to others first: deleted in several inputs (staged), a chain goes only
    # once nothing still there refers to it.
    stale = [name for name, _ in reversed(_targets_first([(n, lines) for n, lines in live.chains.items() if n not in planned.chains]))]
    delete_jumps, insert_jumps = [], []
    for builtin in dict.fromkeys(b for b, _ in (*planned.jumps, *live.jumps)):
        wanted = [saved_form(spec) for b, spec in planned.jumps if b == builtin]
        seen: set[str] = set()
        for b, spec in live.jumps:
            if b == builtin:
                if spec not in wanted or spec in seen:
                    delete_jumps.append((builtin, spec))  # -D removes the first copy: one stays
                seen.add(spec)
        insert_jumps += [(builtin, spec) for spec in reversed(wanted) if spec not in seen]
    return TableUpdate(
        family,
        table,
        chains=tuple((name, planned.chains[name]) for name in written),
        created=frozenset(name for name in written if name not in live.chains),
        delete_jumps=tuple(delete_jumps),
        insert_jumps=tuple(insert_jumps),
        delete_chains=tuple(stale),
    )


def staged(u: TableUpdate, size: int | None) -> list[TableUpdate]:
    """``u`` as several inputs when it creates or deletes more than ``size`` chains: first the
    new chains, ``size`` at a time (chains a rule jumps to before that rule's); then the input
    that alone changes what packets meet: chains rewritten, jumps from built-in chains (new
    chains are reached only through these, chains to delete no longer); then the chains to
    delete, ``size`` at a time, emptied and deleted. iptables-nft 1.8.9 takes time quadratic in
    the chains of one input: creating 21,000 in one took 26 to 96 s, in chunks of 2,000 under
    5 s; deleting them 7.6 s (docs/iptables-layout.md)."""
    new = _targets_first([c for c in u.chains if c[0] in u.created])
    if size is None or (len(new) <= size and len(u.delete_chains) <= size):
        return [u]
    gone = u.delete_chains
    parts = [
        TableUpdate(u.family, u.table, tuple(new[i : i + size]), frozenset(n for n, _ in new[i : i + size]), (), (), ())
        for i in range(0, len(new), size)
    ]
    switch = replace(u, chains=tuple(c for c in u.chains if c[0] not in u.created), created=frozenset(), delete_chains=())
    parts += [switch] if switch else []
    parts += [TableUpdate(u.family, u.table, (), frozenset(), (), (), gone[i : i + size]) for i in range(0, len(gone), size)]
    return parts


def _targets_first(chains: list[tuple[str, tuple[str, ...]]]) -> list[tuple[str, tuple[str, ...]]]:
    rules = dict(chains)
    seen: set[str] = set()
    ordered: list[tuple[str, tuple[str, ...]]] = []

    def visit(name: str) -> None:  # chains lead at most a few levels deep: SERVICES, EXT, SVC, SEP
        if name in seen or name not in rules:
            return
        seen.add(name)
        for line in rules[name]:
            visit(target(line))
        ordered.append((name, rules[name]))

    for name in rules:
        visit(name)
    return ordered


def summary(updates: list[TableUpdate], live_empty: bool) -> str:
    """What an apply sent, in a few words, per family that changed."""
    if live_empty:
        return "created svcctl's chains in " + " and ".join(dict.fromkeys(u.family.short for u in updates))
    parts = []
    for family in dict.fromkeys(u.family for u in updates):
        mine = [u for u in updates if u.family is family and u]
        if not mine:
            continue
        counts = [
            f"{sum(u.written for u in mine)} chain(s) written",
            f"{sum(len(u.delete_chains) for u in mine)} removed",
        ]
        inserted, deleted = sum(len(u.insert_jumps) for u in mine), sum(len(u.delete_jumps) for u in mine)
        if inserted:
            counts.append(f"{inserted} jump(s) inserted")
        if deleted:
            counts.append(f"{deleted} jump(s) deleted")
        parts.append(f"{family.short}: {', '.join(counts)}")
    return "; ".join(parts) or "no changes"
