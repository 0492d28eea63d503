"""A transaction: the operations one apply sends, in order, as typed data, and the commits that
carry them (``stages``). ``render`` writes operations as one nft script (all committed, or
none); the apply decision (``decide``) builds the transaction, and tests can apply it to a fake
kernel (tests/fake_kernel.py) without root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from .frame import FIREWALL_ALLOW, FIREWALL_IPS
from .objects import Element, EndpointChain, ExternalChain, Family, NamedSet, Table

if TYPE_CHECKING:  # the kernel side: render (and so compile) imports this module too
    from ..conntrack import UdpFrontend


@dataclass(frozen=True)
class TableRef:
    family: Family
    name: str

    @property
    def scope(self) -> str:
        return f"{self.family.value} {self.name}"


@dataclass(frozen=True)
class CreateTable:
    """Create an empty table; refused (EEXIST) if a table of that name exists. svcctl sends it
    before loading a table it found absent: a table of that name that holds nothing svcctl can
    see (no chain, no set: only counters, quotas, flowtables...) is someone else's."""

    table: TableRef
    op = "create_table"


@dataclass(frozen=True)
class LoadTable:
    """Declare a table and its sets, empty its chains and static sets, and write its rules and
    elements: loads into an empty kernel and onto a live table of the same frame alike, keeping
    the session-affinity sets' state."""

    table: Table
    op = "load_table"


@dataclass(frozen=True)
class DeleteTable:
    table: TableRef
    op = "delete_table"


@dataclass(frozen=True)
class AddObjects:
    """New affinity sets and per-port chains in a live table."""

    table: TableRef
    sets: tuple[NamedSet, ...]
    endpoint_chains: tuple[EndpointChain, ...]
    external_chains: tuple[ExternalChain, ...]
    op = "add_objects"


@dataclass(frozen=True)
class AddElements:
    table: TableRef
    set: NamedSet
    elements: tuple[Element, ...]
    op = "add_elements"


@dataclass(frozen=True)
class DeleteElements:
    table: TableRef
    set: NamedSet
    elements: tuple[Element, ...]  # keys only
    op = "delete_elements"


@dataclass(frozen=True)
class DeleteChain:
    table: TableRef
    name: str
    op = "delete_chain"


@dataclass(frozen=True)
class DeleteSet:
    table: TableRef
    name: str
    op = "delete_set"


Operation = Union[CreateTable, LoadTable, DeleteTable, AddObjects, AddElements, DeleteElements, DeleteChain, DeleteSet]


@dataclass(frozen=True)
class Transaction:
    operations: tuple[Operation, ...]  # () when nothing needs to change
    kind: str  # "unchanged", "update" or "full"
    summary: str
    removed_udp_endpoints: tuple[tuple[str, int], ...] = ()  # conntrack entries to delete after the commit
    new_udp_frontends: tuple[UdpFrontend, ...] = ()  # and those not DNATed to these (svcctl.conntrack)

    def __bool__(self) -> bool:
        return bool(self.operations)


def stages(operations: tuple[Operation, ...]) -> tuple[tuple[Operation, ...], ...]:
    """The commits that carry ``operations``, in order: new per-port chains and sets first, in a
    commit of their own, then the rest; source ranges of LoadBalancer ports that lose their
    check last.

    A commit is atomic for rules, but not quite for a packet in flight: nft_do_chain picks the
    chains' rules of the generation current when the packet entered the base chain, while a set
    or verdict map lookup later in the same chain reads the generation current at that moment.
    A packet that straddles the commit can thus find a new map element pointing at a chain that
    was created in the same commit, and run that chain's rules of the old generation: none. The
    packet falls through un-DNATed (measured: docs/kernel-notes.md, 1.5; bench/commit_race.py).
    Chains committed earlier hold their rules in both generations. Nothing refers to them until
    the second commit, so the first one changes nothing a packet can see.

    The same mix meets the source-range check, which looks up ``firewall-ips`` and then
    ``firewall-allow``: a port whose check goes away, with its allowed ranges in the same
    commit, could drop an allowed packet that found the port in the first set and no longer its
    source in the second. Its ranges are deleted in a commit after it: until then nothing looks
    them up."""
    unchecked = any(isinstance(op, DeleteElements) and op.set.name == FIREWALL_IPS.name for op in operations)

    def stage(op: Operation) -> int:
        if isinstance(op, AddObjects):
            return 0
        return 2 if unchecked and isinstance(op, DeleteElements) and op.set.name == FIREWALL_ALLOW.name else 1

    staged: tuple[list[Operation], list[Operation], list[Operation]] = ([], [], [])
    for op in operations:
        staged[stage(op)].append(op)
    if not staged[1]:
        return (operations,)
    return tuple(tuple(ops) for ops in staged if ops)


def withdrawal(added: tuple[Operation, ...]) -> tuple[Operation, ...]:
    """What removes the chains and sets of a first stage (``stages``) again, when the commit
    after it was refused: external chains first (they jump to the endpoint chains), sets last."""
    objects = [op for op in added if isinstance(op, AddObjects)]
    return (
        *(DeleteChain(op.table, e.name) for op in objects for e in op.external_chains),
        *(DeleteChain(op.table, c.name) for op in objects for c in op.endpoint_chains),
        *(DeleteSet(op.table, s.name) for op in objects for s in op.sets),
    )
