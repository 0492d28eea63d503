"""apply, dry-run, diff and delete: the nftables rules meet the kernel.

Every change is one nftables transaction as packets see it, so the kernel holds the old ruleset
or the new one, never a mix (new chains are committed just before it, unreferenced, and source
ranges no check reads any more just after: transaction.stages); applies are serialized by a lock
file, so two never interleave; and only svcctl's own tables (``ip <table>``, ``ip6 <table>``)
are read, changed or deleted.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, suppress
from typing import Iterator

from ..backends import ApplyResult
from ..conntrack import committed
from ..kernel import KernelError, Refused, in_throwaway_netns, locked
from .decide import transaction
from .changes import diff_text
from .live import foreign, names, read_live
from .nft import Listing, Nft
from .objects import Family, Ruleset
from .frame import MARKER_PREFIX
from .render import frame_name, listing, render, render_ruleset
from .transaction import AddObjects, CreateTable, DeleteTable, Operation, TableRef, Transaction, stages, withdrawal


def privileged() -> Nft:
    """An Nft context, once a first query has shown that the kernel lets us in: without
    CAP_NET_ADMIN that query fails with the one-sentence KernelError the contract asks for."""
    nft = Nft()
    with _quiet_stderr():  # libnftables prints its own "(you must be root)" line to fd 2
        names(nft)
    return nft


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def scopes(table: str) -> list[str]:
    """How nft names svcctl's tables of this name: ``ip svcctl``, ``ip6 svcctl``."""
    return [f"{f.value} {table}" for f in Family]


def live_listings(ruleset: Ruleset, texts: dict[str, str]) -> list[str]:
    """svcctl's tables' ``nft list table`` texts, in the ruleset's order. Raises KernelError for
    a table of svcctl's name that lacks svcctl's marker: also one holding nothing svcctl's cheap
    listings see."""
    for t in ruleset.tables:
        if texts[t.scope] and f"\tset {MARKER_PREFIX}" not in texts[t.scope]:
            raise foreign(t)
    return [texts[t.scope] for t in ruleset.tables]


def planned_listings(ruleset: Ruleset) -> list[str]:
    """What ``nft list table`` will print once the ruleset is live. The templates write rules in
    the kernel's own form (tests/test_golden.py proves it against the kernel for every golden
    case), so this needs no kernel."""
    return [listing(t) for t in ruleset.tables]


def prove(ruleset: Ruleset) -> None:
    """Load the full ruleset into a throwaway namespace: the kernel's proof that it accepts it
    (libnftables' dry run alone is not, docs/kernel-notes.md). Raises Refused if refused."""
    text = render_ruleset(ruleset)
    in_throwaway_netns(lambda: Nft().run(text))


def _frames(ruleset: Ruleset) -> dict[str, str]:
    return {t.scope: frame_name(t) for t in ruleset.tables}


def send(nft: Nft, operations: tuple[Operation, ...]) -> None:
    """Commit ``operations`` in their stages (transaction.stages): new chains first, then what
    refers to them, then source ranges no longer looked up. If the second stage is refused, the
    chains and sets of the first are deleted again (best effort: the next apply deletes what is
    left, as stale chains), so a refused apply leaves the kernel as it was. (A refused last
    stage leaves ranges that nothing looks up; the next apply deletes them.)"""
    commits = stages(operations)
    for i, stage in enumerate(commits):
        try:
            nft.run(render(stage))
        except KernelError:
            if i == 1 and all(isinstance(op, AddObjects) for op in commits[0]):
                with suppress(KernelError):
                    nft.run(render(withdrawal(commits[0])))
            raise


def _send(nft: Nft, ruleset: Ruleset, tx: Transaction, dry_run: bool) -> None:
    try:
        if dry_run:  # checked whole: the kernel resolves references within one transaction
            nft.run(render(tx.operations), dry_run=True)
        else:
            send(nft, tx.operations)
    except Refused as err:
        # The kernel refuses `create table` for a table that exists: one svcctl could not see
        # (no chain, no set), so not svcctl's.
        for op in tx.operations:
            if isinstance(op, CreateTable) and "File exists" in str(err) and f"create table {op.table.scope}" in str(err):
                raise foreign(next(t for t in ruleset.tables if t.scope == op.table.scope)) from None
        raise


def apply(ruleset: Ruleset, dry_run: bool = False, reload: bool = False) -> ApplyResult:
    """Make the kernel hold ``ruleset``, changing only what differs (svcctl.nftables.decide).
    With ``dry_run`` nothing changes: the full ruleset is loaded into a throwaway namespace
    (real proof), the actual transaction is checked by the kernel without commit, and the diff
    is returned. ``reload``: load the tables whole even if intact (decide.transaction).
    Raises Refused (nothing changed) or KernelError."""
    nft = privileged()
    frames = _frames(ruleset)
    with locked(ruleset.tables[0].name):
        live = read_live(nft, ruleset, frames)
        tx = transaction(ruleset, live, frames, reload)
        if dry_run:
            prove(ruleset)
            if tx:
                _send(nft, ruleset, tx, dry_run=True)
            live_texts = live_listings(ruleset, {t.scope: nft.listing(f"list table {t.scope}") for t in ruleset.tables})
            return ApplyResult(bool(tx), tx.summary, diff_text(live_texts, planned_listings(ruleset)), (), ())
        if tx:
            _send(nft, ruleset, tx, dry_run=False)
        return committed(bool(tx), tx.summary, tx.removed_udp_endpoints, tx.new_udp_frontends)


def diff(ruleset: Ruleset, live: Listing, raw: bool = False) -> str:
    """What apply would change (``live``: the live tables' listing, started before the plan was
    compiled): per Service port, then the rules without per-port hashes; with ``raw`` the plain
    unified diff of the two listings. "" when there is nothing to change."""
    return diff_text(live_listings(ruleset, live.texts()), planned_listings(ruleset), raw)


def live_rules(table: str) -> str:
    """nft text of svcctl's live tables of this name, as the kernel lists them (it loads as it
    is, affinity state included). Reads only. Raises KernelError when none is live."""
    nft = privileged()
    ours = names(nft).owned()
    text = "".join(nft.listing(f"list table {f.value} {table}") for f in Family if (f.value, table) in ours)
    if not text:
        raise KernelError(f"no svcctl table named {table} is live here: apply the rules first, or leave out --live")
    return text


def delete(table: str) -> tuple[list[str], list[str]]:
    """Delete svcctl's tables of this name (ip and ip6) and nothing else. Returns the tables
    deleted and those of that name left alone because svcctl did not make them."""
    nft = privileged()
    with locked(table):
        listed = names(nft)
        present, ours = listed.present(), listed.owned()
        gone = [f"{f.value} {table}" for f in Family if (f.value, table) in ours]
        foreign_tables = [f"{f.value} {table}" for f in Family if (f.value, table) in present - ours]
        if gone:
            nft.run(render(DeleteTable(TableRef(f, table)) for f in Family if (f.value, table) in ours))
        return gone, foreign_tables


