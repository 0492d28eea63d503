"""A transaction: the operations one apply sends, in order, as typed data. ``render`` writes it
as one nft script (all committed, or none); the apply decision (``decide``) builds it, and tests
can apply it to a fake kernel (tests/fake_kernel.py) without root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .objects import Element, EndpointChain, ExternalChain, Family, NamedSet, Table


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

    def __bool__(self) -> bool:
        return bool(self.operations)
