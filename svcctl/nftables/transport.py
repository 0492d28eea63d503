"""apply, dry-run, diff and delete: the nftables rules meet the kernel.

Every change is one nftables transaction, so the kernel holds the old ruleset or the new one,
never a mix; applies are serialized by a lock file, so two never interleave; and only svcctl's
own tables (``ip <table>``, ``ip6 <table>``) are read, changed or deleted.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from ..backends import ApplyResult
from ..conntrack import forget_udp_flows
from ..kernel import Refused, in_throwaway_netns, locked
from .decide import transaction
from .listing import normalize, unified_diff
from .live import foreign, owned_tables, present_tables, read_live
from .nft import Nft
from .objects import Family, Ruleset
from .render import frame_name, render, render_ruleset
from .transaction import CreateTable, DeleteTable, TableRef, Transaction


def privileged() -> Nft:
    """An Nft context, once a first query has shown that the kernel lets us in: without
    CAP_NET_ADMIN that query fails with the one-sentence KernelError the contract asks for."""
    nft = Nft()
    with _quiet_stderr():  # libnftables prints its own "(you must be root)" line to fd 2
        present_tables(nft)
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


def live_listing(nft: Nft, ruleset: Ruleset) -> str:
    return "".join(normalize(nft.listing(f"list table {t.scope}")) for t in ruleset.tables)


def planned_listing(ruleset: Ruleset) -> str:
    """Load the full ruleset into a throwaway namespace and list it there: the kernel's proof
    that it accepts the ruleset, and its canonical form. Raises Refused if the kernel refuses."""
    text = render_ruleset(ruleset)

    def load_and_list() -> str:
        nft = Nft()
        nft.run(text)
        return live_listing(nft, ruleset)

    return in_throwaway_netns(load_and_list)


def _frames(ruleset: Ruleset) -> dict[str, str]:
    return {t.scope: frame_name(t) for t in ruleset.tables}


def _send(nft: Nft, ruleset: Ruleset, tx: Transaction, dry_run: bool) -> None:
    try:
        nft.run(render(tx.operations), dry_run=dry_run)
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
            planned = planned_listing(ruleset)
            if tx:
                _send(nft, ruleset, tx, dry_run=True)
            return ApplyResult(bool(tx), tx.summary, unified_diff(live_listing(nft, ruleset), planned), (), ())
        if tx:
            _send(nft, ruleset, tx, dry_run=False)
        deleted, warnings = forget_udp_flows(tx.removed_udp_endpoints)
        return ApplyResult(bool(tx), tx.summary, "", deleted, warnings)


def diff(ruleset: Ruleset) -> str:
    """Unified diff between the live tables and what apply would make live; "" if none."""
    nft = privileged()
    read_live(nft, ruleset, _frames(ruleset))  # refuses tables svcctl did not make, as apply does
    return unified_diff(live_listing(nft, ruleset), planned_listing(ruleset))


def delete(table: str) -> tuple[list[str], list[str]]:
    """Delete svcctl's tables of this name (ip and ip6) and nothing else. Returns the tables
    deleted and those of that name left alone because svcctl did not make them."""
    nft = privileged()
    with locked(table):
        present, ours = present_tables(nft), owned_tables(nft)
        gone = [f"{f.value} {table}" for f in Family if (f.value, table) in ours]
        foreign_tables = [f"{f.value} {table}" for f in Family if (f.value, table) in present - ours]
        if gone:
            nft.run(render(DeleteTable(TableRef(f, table)) for f in Family if (f.value, table) in ours))
        return gone, foreign_tables


