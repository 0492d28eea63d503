"""nftables objects as svcctl writes them: for each family, one table with named sets and maps,
the frame's hook chains (svcctl.nftables.frame) and chains per Service port. Built from the plan
by ``layout``, written out by ``render``; every string in them is validated input or generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from ..plan.model import LOOPBACK, MasqueradeScope
from .frame import ADDR, REJECT_CHAIN, SetSpec


class Family(StrEnum):
    """An nftables table family svcctl writes: one table for IPv4, one for IPv6."""

    IP = "ip"
    IP6 = "ip6"

    @staticmethod
    def of(version: int) -> "Family":
        return Family.IP if version == 4 else Family.IP6

    @property
    def version(self) -> int:
        return 4 if self is Family.IP else 6

    @property
    def addr_type(self) -> str:
        return "ipv4_addr" if self is Family.IP else "ipv6_addr"

    @property
    def loopback(self) -> str:
        return LOOPBACK[self.version]

    @property
    def target_format(self) -> str:
        """A DNAT target as a ``%`` format of (address, port): ``10.0.0.1:80``, ``[fd00::1]:80``.
        (Formatting an Endpoint, a tuple, with it runs in C: once per endpoint of every group.)"""
        return "%s:%s" if self is Family.IP else "[%s]:%s"

    def key_type(self, spec: SetSpec) -> tuple[str, ...]:
        return tuple(self.addr_type if part == ADDR else part for part in spec.key)


class VerdictKind(StrEnum):
    GOTO = "goto"
    DROP = "drop"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    chain: str = ""

    @staticmethod
    def goto(chain: str) -> "Verdict":
        return Verdict(VerdictKind.GOTO, chain)


REJECT = Verdict.goto(REJECT_CHAIN.name)
DROP = Verdict(VerdictKind.DROP)


class Element(NamedTuple):
    """One element of a named set or map: a key (its parts joined by ``.``) and, in a map, a
    verdict. (NamedTuples for the objects counted in 100,000s: cheaper than frozen dataclasses.)"""

    key: tuple[str, ...]
    verdict: Verdict | None = None


@dataclass(frozen=True)
class NamedSet:
    """A named set or verdict map. ``dynamic`` sets are filled by the packet path (session
    affinity) and are never flushed by an apply; every other set is rewritten in full."""

    name: str
    key_type: tuple[str, ...]
    comment: str
    is_map: bool = False
    interval: bool = False
    dynamic: bool = False
    elements: tuple[Element, ...] = ()


CASCADE_MAX = 32  # endpoints; more, and a chain is one numgen map rule (EndpointChain.spread)


class Pick(NamedTuple):
    """One rule of an endpoint cascade: DNAT to ``target`` if ``numgen random mod modulus`` is 0
    (always, when ``modulus`` is None). ``affinity`` names the endpoint's affinity set."""

    target: str  # address:port as nft writes a DNAT target
    modulus: int | None
    affinity: str | None

    @property
    def element(self) -> str:
        """The target as a map element's data: ``10.0.0.1 . 80``, ``fd00::1 . 80``."""
        address, _, port = self.target.rpartition(":")
        return f"{address.strip('[]')} . {port}"


@dataclass(frozen=True)
class EndpointChain:
    """``svc-`` (all usable endpoints) or ``local-`` (this node's) chain of one Service port."""

    name: str
    comment: str
    protocol: str  # nft name: tcp, udp, sctp
    picks: tuple[Pick, ...]
    affinity_timeout: int | None  # seconds; with it, a client goes back to its endpoint first

    @property
    def spread(self) -> bool:
        """One rule choosing among all endpoints with ``numgen random mod N map {...}`` instead of
        a cascade of N rules: a new connection walks (N+1)/2 cascade rules on average, ~65 ns
        each, so above CASCADE_MAX endpoints the map is faster (flat up to 20,000 endpoints,
        measured: docs/nft-layout.md); below, the cascade loads faster (an anonymous map costs
        ~1 ms of load each). Affinity needs a rule per endpoint (its set is refreshed there), so
        a chain with affinity stays a cascade."""
        return len(self.picks) > CASCADE_MAX and not self.affinity_timeout


@dataclass(frozen=True)
class ExternalChain:
    """``ext-`` chain of one Service port (svcctl.plan.model.ExternalRoute); "" for no chain."""

    name: str
    comment: str
    mark_all: bool
    pods_to: str
    node_to: str
    then_to: str


@dataclass(frozen=True)
class Table:
    family: Family
    name: str
    masquerade: MasqueradeScope
    nodeport_cidrs: bool  # NodePorts only on local addresses inside @nodeport-cidrs
    sets: tuple[NamedSet, ...]  # the affinity sets, then the frame's sets in frame order
    endpoint_chains: tuple[EndpointChain, ...]
    external_chains: tuple[ExternalChain, ...]

    @property
    def static_sets(self) -> tuple[NamedSet, ...]:
        return tuple(s for s in self.sets if not s.dynamic)

    @property
    def scope(self) -> str:
        """``ip svcctl``: how nft commands name the table."""
        return f"{self.family.value} {self.name}"


@dataclass(frozen=True)
class Ruleset:
    tables: tuple[Table, ...]
    warnings: tuple[str, ...] = ()
