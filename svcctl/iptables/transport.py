"""apply, dry-run, diff and delete: the iptables rules meet the kernel.

An apply reads svcctl's part of the nat and filter tables of both families (iptables-save),
decides per table what differs (svcctl.iptables.decide) and sends one iptables-restore
--noflush per table that changed: filter before nat, IPv4 before IPv6 (iptables-nft gets many
new or old chains in several, svcctl.iptables.decide.staged). Each table is committed whole or
not at all, but the tables are separate commits: when one is refused, the tables committed
before it in the same apply are put back as they were (the same decision, with the state read
before as the plan), so that a refused apply changes nothing. Applies are serialized by svcctl's
lock and, against other programs, by the xtables lock (``-w``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from ..backends import ApplyResult
from ..changes import port_changes
from ..conntrack import UdpFrontend, committed
from ..kernel import KernelError, has_net_admin, in_throwaway_netns, locked
from .changes import owners as live_owners
from .changes import port_states
from .decide import TableUpdate, staged, summary, table_update
from .frame import NODEPORTS, PREFIX, SERVICES, TableName
from .objects import Family
from .refusal import IptablesRefused, describe
from .render import Planned, render
from .state import TableState, listing, parse_save, present, saved_form, udp_targets
from .xtables import NEEDS_ROOT, Mode, RestoreFailed, Saves, Xtables

LOCK = "iptables"  # svcctl's own lock (svcctl.kernel.locked), for every iptables apply and delete
Live = dict[tuple[Family, TableName], TableState]


def privileged() -> None:
    """Before svcctl's lock (whose file only root may open): the one sentence for a user
    without the privileges, as iptables itself would refuse."""
    if not has_net_admin():
        raise KernelError(NEEDS_ROOT)


# A nat dispatch rule for a UDP port: `-d ADDRESS/32` (none in SVCCTL-NODEPORTS), then its port;
# and the jump to the NodePorts, with `-d CIDR` for each --nodeport-addresses range.
_UDP_DISPATCH = re.compile(rf"-A \S+ (?:-d ([0-9a-f.:]+)/\d+ )?-p udp .* --dport (\d+) -j {PREFIX}")
_TO_NODE_PORTS = re.compile(rf"-A {SERVICES} (?:-d (\S+) )?.*-j {NODEPORTS}$")


def udp_frontends(version: int, nat: TableState) -> set[UdpFrontend]:
    """The UDP ports a nat table's dispatch leads to a DNAT: its rules in SVCCTL-SERVICES (one
    per service address and port with endpoints) and SVCCTL-NODEPORTS."""
    services = nat.chains.get(SERVICES, ())
    within = tuple(m[1] for m in map(_TO_NODE_PORTS.match, services) if m and m[1])
    found = set()
    for line in (*services, *nat.chains.get(NODEPORTS, ())):
        match = _UDP_DISPATCH.match(line)
        if match:
            found.add(UdpFrontend(version, match[1], int(match[2])) if match[1] else UdpFrontend(version, "", int(match[2]), within))
    return found


def new_udp_frontends(plan: Planned, live: Live) -> set[UdpFrontend]:
    """The UDP ports the planned nat dispatch DNATs and the live one did not (svcctl.conntrack)."""
    new = set()
    for (f, t), state in plan.tables.items():
        if t is TableName.NAT:
            before = live[(f, t)]
            # Without the built-in chains' jumps (one deleted by hand), its rules DNATed nothing.
            hooked = {(b, saved_form(spec)) for b, spec in state.jumps} <= set(before.jumps)
            new |= udp_frontends(f.version, state) - (udp_frontends(f.version, before) if hooked else set())
    return new


def _live(saved: dict[Family, str]) -> Live:
    return {(f, t): state for f in Family for t, state in parse_save(saved[f]).items()}


def _undo(xt: Xtables, done: list[TableUpdate], before: Live) -> bool:
    """Put the tables these updates changed back as they were; False if that failed too."""
    try:
        for family, table in dict.fromkeys((u.family, u.table) for u in reversed(done)):
            now = parse_save(xt.save(family))[table]
            back = table_update(family, table, before[(family, table)], now)
            for part in staged(back, xt.chunk) if back else ():
                xt.restore(family, render([part]))
    except (RestoreFailed, KernelError):
        return False
    return True


def _commit(xt: Xtables, updates: list[TableUpdate], before: Live, planned: dict[str, str]) -> None:
    """Send the updates one after the other (each in stages where the flavour needs it,
    svcctl.iptables.decide.staged); when one fails, undo those sent before it. ``planned``:
    the planned chains' Service ports (the live ones' are read from their rules)."""
    owners = {**live_owners(before.values()), **planned}
    done: list[TableUpdate] = []
    for u in (part for update in updates for part in staged(update, xt.chunk)):
        text = render([u])
        try:
            xt.restore(u.family, text)
        except (RestoreFailed, KernelError) as err:
            undone = _undo(xt, done, before)
            if isinstance(err, RestoreFailed):
                raise IptablesRefused(describe(str(err), text, f"{u.family.value} {u.table.value}", owners, not undone), text) from None
            if not undone:
                raise KernelError(f"{err} (some rules of an earlier table could not be put back: run apply again)") from None
            raise
        done.append(u)


def _prove(xt: Xtables, plan: Planned) -> None:
    """Load the whole ruleset into a throwaway network namespace with the same flavour: the
    kernel's proof that it takes it (iptables-nft's --test only parses)."""
    empty = plan.empty()

    def load() -> None:
        for (family, table), state in plan.tables.items():
            for part in staged(table_update(family, table, state, empty[(family, table)]), xt.chunk):
                text = render([part])
                try:
                    xt.restore(family, text)
                except RestoreFailed as err:
                    raise IptablesRefused(describe(str(err), text, f"{family.value} {table.value}", plan.owners, False), text) from None

    in_throwaway_netns(load)


def _listing(states: Live) -> list[str]:
    out = []
    for (family, table), state in states.items():
        out += [f"# {family.value} {table.value}\n", *(f"{line}\n" for line in listing(state))]
    return out


def _by_table(states: Live) -> dict[TableName, list[TableState]]:
    out: dict[TableName, list[TableState]] = {}
    for (_, table), state in states.items():
        out.setdefault(table, []).append(state)
    return out


def _diff(live: Live, plan: Planned, raw: bool = False) -> str:
    """What apply would change: "" when nothing; else one line per changed Service port (unless
    ``raw``), then the unified diff of svcctl's chains and jumps, live and planned."""
    before, after = _listing({k: live[k] for k in plan.tables}), _listing(plan.tables)
    if before == after:
        return ""
    head = "" if raw else "".join(f"# {line}\n" for line in port_changes(port_states(_by_table(live)), port_states(_by_table(plan.tables))))
    return head + "".join(difflib.unified_diff(before, after, fromfile="live", tofile="planned"))


def apply(plan: Planned, dry_run: bool = False, reload: bool = False) -> ApplyResult:
    """Make the tables hold ``plan``, sending only the tables that differ (``reload``: every
    chain rewritten). With ``dry_run`` nothing changes: the whole ruleset is loaded into a
    throwaway namespace, what apply would send is checked with iptables-restore --test, and the
    diff is returned. Raises IptablesRefused (nothing changed) or KernelError."""
    privileged()
    with locked(LOCK):
        saves = Saves(plan.mode, other=not dry_run)
        xt, saved = saves.choose()
        live = _live(saved)
        if not dry_run:
            result = send(xt, plan, live, reload)
            if saves.also_in is None:
                return result
            both = (
                f"svcctl's chains are also in iptables-{saves.also_in.value}: both flavours process every packet; "
                f"remove those with `svcctl delete --backend iptables --iptables-mode {saves.also_in.value}`"
            )
            return dataclasses.replace(result, warnings=(*result.warnings, both))
        updates, said = _decide(xt, plan, live, reload)
        _prove(xt, plan)
        # --test on the live tables; not on a table that does not exist yet: iptables-legacy
        # would create it to test against (the throwaway namespace has proven those).
        for u in (u for u in updates if u and u.table in present(saved[u.family])):
            text = render([u])
            try:
                xt.restore(u.family, text, test=True)
            except RestoreFailed as err:
                raise IptablesRefused(describe(str(err), text, f"{u.family.value} {u.table.value}", plan.owners, False), text) from None
        return ApplyResult(any(updates), said, _diff(live, plan), (), ())


def read(mode: Mode) -> tuple[Xtables, Live]:
    """The flavour to write with and svcctl's part of its tables. Call with svcctl's lock held."""
    xt, saved = Saves(mode).choose()
    return xt, _live(saved)


def _decide(xt: Xtables, plan: Planned, live: Live, whole: bool = False) -> tuple[list[TableUpdate], str]:
    updates = [table_update(f, t, state, live[(f, t)], whole) for (f, t), state in plan.tables.items()]
    fresh = not any(s.chains or s.jumps for s in live.values())
    return updates, summary(updates, fresh) + (f" ({xt.flavour})" if fresh else "")


def send(xt: Xtables, plan: Planned, live: Live, whole: bool = False) -> ApplyResult:
    """Commit what differs between ``live`` (read from the kernel, or what the last commit left)
    and ``plan`` (``whole``: every chain rewritten), then clear the UDP flows to endpoints gone.
    Call with svcctl's lock held. Raises IptablesRefused (nothing changed) or KernelError."""
    updates, said = _decide(xt, plan, live, whole)
    changed = [u for u in updates if u]
    _commit(xt, changed, live, plan.owners)
    gone = {e for (_, t), s in live.items() if t is TableName.NAT for e in udp_targets(s)} - plan.udp_endpoints
    return committed(bool(changed), said, tuple(sorted(gone)), tuple(sorted(new_udp_frontends(plan, live))))


def diff(plan: Planned, live: Saves, raw: bool = False) -> str:
    """What apply would change (``live``: iptables-save started before the plan was compiled)."""
    _, saved = live.choose()
    return _diff(_live(saved), plan, raw)


def delete(mode: Mode) -> tuple[str, tuple[str, ...]]:
    """Delete svcctl's chains and the jumps to them, and nothing else."""
    privileged()
    with locked(LOCK):
        xt, live = read(mode)
        updates = [table_update(f, t, TableState(), state) for (f, t), state in live.items()]
        changed = [u for u in updates if u]
        if not changed:
            return f"nothing to delete: no svcctl chains in {xt.flavour}", ()
        _commit(xt, changed, live, {})
        chains = sum(len(u.delete_chains) for u in changed)
        jumps = sum(len(u.delete_jumps) for u in changed)
        where = ", ".join(f"{u.family.short} {u.table.value}" for u in changed)
        return f"deleted: {chains} chain(s) and {jumps} jump(s) of svcctl's in {xt.flavour} ({where})", ()
