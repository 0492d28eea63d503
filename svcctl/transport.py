"""apply, dry-run, diff and delete: the plan meets the kernel.

Every change is one nftables transaction, so the kernel holds the old ruleset or the new one,
never a mix; applies are serialized by a lock file, so two never interleave; and only svcctl's
own tables (``ip <table>``, ``ip6 <table>``) are read, changed or deleted.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from .kernel import KernelError, Nft, Refused, culprit, in_throwaway_netns, owned_tables, present_tables
from .formats import ip_version
from .listing import normalize, unified_diff
from .plan import Family, Ruleset
from .sync import Transaction, read_live, transaction

LOCK_DIR = "/run/lock"


@contextmanager
def locked(table: str) -> Iterator[None]:
    """Hold the lock of one table name: a second apply waits until the first is done."""
    directory = LOCK_DIR if os.path.isdir(LOCK_DIR) else "/tmp"
    path = os.path.join(directory, f"svcctl-{table}.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as err:
        raise KernelError(f"cannot open the lock file {path}: {err.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _privileged() -> Nft:
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


def _tables(ruleset: Ruleset) -> list[tuple[Family, str]]:
    return [(t.family, t.name) for t in ruleset.tables]


def live_listing(nft: Nft, tables: list[tuple[Family, str]]) -> str:
    return "".join(normalize(nft.listing(f"list table {family.value} {name}")) for family, name in tables)


def planned_listing(full_text: str, tables: list[tuple[Family, str]]) -> str:
    """Load the full ruleset into a throwaway namespace and list it there: the kernel's proof
    that it accepts the ruleset, and its canonical form. Raises Refused if the kernel refuses."""

    def load_and_list(nft: Nft) -> str:
        nft.run(full_text)
        return live_listing(nft, tables)

    return in_throwaway_netns(load_and_list)


@dataclass(frozen=True)
class ApplyResult:
    transaction: Transaction
    diff: str  # with --dry-run: the diff between live and planned
    conntrack_deleted: tuple[tuple[str, int], ...]
    warnings: tuple[str, ...]


def apply(ruleset: Ruleset, full_text: str, dry_run: bool = False) -> ApplyResult:
    """Make the kernel hold ``ruleset``, changing only what differs (svcctl.sync).
    With ``dry_run`` nothing changes: the full ruleset is loaded into a throwaway namespace
    (real proof), the actual transaction is checked by the kernel without commit, and the diff
    is returned. Raises Refused (nothing changed) or KernelError."""
    tables = _tables(ruleset)
    nft = _privileged()
    with locked(ruleset.tables[0].name):
        live = read_live(nft, ruleset)
        tx = transaction(ruleset, full_text, live)
        if dry_run:
            planned = planned_listing(full_text, tables)
            if tx.script:
                nft.run(tx.script, dry_run=True)
            return ApplyResult(tx, unified_diff(live_listing(nft, tables), planned), (), ())
        if tx.script:
            nft.run(tx.script)
        deleted, warnings = _forget_udp_flows(tx.removed_udp_endpoints)
        return ApplyResult(tx, "", deleted, warnings)


def _forget_udp_flows(endpoints: tuple[tuple[str, int], ...]) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """Delete the UDP conntrack entries DNATed to endpoints that are gone, as kube-proxy does:
    UDP has no end of connection, so a client would keep sending to the old backend until its
    entry timed out."""
    if not endpoints:
        return (), ()
    tool = shutil.which("conntrack")
    if tool is None:
        return (), ("conntrack is not installed: UDP flows to removed endpoints were not cleared (apt-get install conntrack)",)
    for ip, port in endpoints:
        family = ["-f", "ipv6"] if ip_version(ip) == 6 else []
        # Exit status 1 only means that no entry matched.
        subprocess.run([tool, "-D", *family, "-p", "udp", "--dst-nat", ip, "--reply-port-src", str(port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return endpoints, ()


def diff(ruleset: Ruleset, full_text: str) -> str:
    """Unified diff between the live tables and what apply would make live; "" if none."""
    tables = _tables(ruleset)
    live = live_listing(_privileged(), tables)
    return unified_diff(live, planned_listing(full_text, tables))


def delete(table: str) -> tuple[list[str], list[str]]:
    """Delete svcctl's tables of this name (ip and ip6) and nothing else. Returns the tables
    deleted and those of that name left alone because svcctl did not make them."""
    nft = _privileged()
    with locked(table):
        present, ours = present_tables(nft), owned_tables(nft)
        gone = [f"{f.value} {table}" for f in Family if (f.value, table) in ours]
        foreign = [f"{f.value} {table}" for f in Family if (f.value, table) in present - ours]
        if gone:
            nft.run("".join(f"delete table {name}\n" for name in gone))
        return gone, foreign


def describe_refusal(err: Refused) -> str:
    """nft's message, the line of the transaction it points at, and the Service port that line
    belongs to. (nft names a temporary file that is gone by now: the line is quoted instead.)"""
    owner = culprit(err)
    first = str(err).splitlines()[0] if str(err) else "the kernel refused the ruleset"
    where = re.match(r"\S+:(\d+):\d+(?:-\d+)?: (.*)", first)
    if where:
        number = int(where[1])
        lines = err.script.splitlines()
        quoted = lines[number - 1].strip() if 0 < number <= len(lines) else ""
        first = f"{where[2]} at line {number} of the transaction" + (f": {quoted}" if quoted else "")
    return f"the kernel refused the ruleset, nothing was changed: {first}" + (f" ({owner})" if owner else "")
