"""iptables objects as svcctl writes them: for each family, the chains of the nat and filter
tables, their rules as data, and the jumps that hook them into the built-in chains. Built from
the plan by ``layout``, written out by ``render``; every string in them is validated input or
generated.

A rule's parts are those iptables-save prints, in the order it prints them: the template writes
them in that order, so what svcctl sends is what it later reads back (docs/iptables-layout.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Union

from ..plan.model import PortRef
from .frame import TableName


class Family(StrEnum):
    """An IP family, named by its command: iptables for IPv4, ip6tables for IPv6."""

    IPV4 = "iptables"
    IPV6 = "ip6tables"

    @staticmethod
    def of(version: int) -> "Family":
        return Family.IPV4 if version == 4 else Family.IPV6

    @property
    def short(self) -> str:
        """``ip`` or ``ip6``, as svcctl's summaries name a family."""
        return "ip" if self is Family.IPV4 else "ip6"

    @property
    def version(self) -> int:
        return 4 if self is Family.IPV4 else 6

    @property
    def host_bits(self) -> int:
        return 32 if self is Family.IPV4 else 128

    @property
    def recent_mask(self) -> str:
        return "255.255.255.255" if self is Family.IPV4 else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

    @property
    def port_unreachable(self) -> str:
        return "icmp-port-unreachable" if self is Family.IPV4 else "icmp6-port-unreachable"

    def network(self, address: str) -> str:
        """An address or network with its prefix length, as iptables-save prints ``-s``/``-d``."""
        return address if "/" in address else f"{address}/{self.host_bits}"

    @property
    def target_format(self) -> str:
        """A DNAT target as a ``%`` format of (address, port): ``10.0.0.1:80`` or ``[fd00::1]:80``
        (without brackets ip6tables would read the port as part of the address). Formatting an
        Endpoint, a tuple, with it runs in C: once per endpoint of every group."""
        return "%s:%s" if self is Family.IPV4 else "[%s]:%s"


# ---- matches: at most one per rule, after the comment and the port ----------------------------


class Statistic(NamedTuple):
    """``-m statistic --mode random --probability p``: p as kube-proxy writes it (%.10f)."""

    probability: str
    kind: str = "statistic"


class Recent(NamedTuple):
    """Session affinity (xt_recent, list ``name`` keyed by source address): ``seconds`` None
    records the source (``--set``), else checks it was seen within that many seconds."""

    name: str
    mask: str
    seconds: int | None = None
    kind: str = "recent"


class AddrType(NamedTuple):
    """``-m addrtype --src-type LOCAL`` (``source``) or ``--dst-type LOCAL``: a local address."""

    source: bool
    kind: str = "addrtype"


class MarkMatch(NamedTuple):
    """``-m mark ! --mark m/m``: the masquerade bit is not set."""

    mark: str
    kind: str = "mark"


class NewConnection(NamedTuple):
    """``-m conntrack --ctstate NEW``."""

    kind: str = "ctstate"


class OriginalDestination(NamedTuple):
    """``-m conntrack --ctorigdst a --ctorigdstport p``: the destination before DNAT."""

    address: str
    port: int
    kind: str = "ctorigdst"


Match = Union[Statistic, Recent, AddrType, MarkMatch, NewConnection, OriginalDestination]


# ---- targets -----------------------------------------------------------------------------------


class TargetKind(StrEnum):
    JUMP = "jump"  # to a chain, named by ``arg``
    RETURN = "RETURN"
    DROP = "DROP"
    REJECT = "REJECT"  # arg: the --reject-with type
    DNAT = "DNAT"  # arg: the --to-destination
    MARK = "MARK"  # arg: the --set-xmark value/mask
    MASQUERADE = "MASQUERADE"  # always --random-fully, as svcctl's nftables masquerade


class Target(NamedTuple):
    kind: TargetKind
    arg: str = ""

    @staticmethod
    def jump(chain: str) -> "Target":
        return Target(TargetKind.JUMP, chain)


RETURN = Target(TargetKind.RETURN)
DROP = Target(TargetKind.DROP)


class Rule(NamedTuple):
    """One rule: ``[! -s source] [-d destination] [-p protocol] [-m comment] [-m protocol
    --dport port] [match] -j target``. ``source``/``destination`` carry their prefix length.
    (NamedTuples for the objects counted in 100,000s: cheaper than frozen dataclasses.)"""

    target: Target
    source: str = ""
    not_source: bool = False
    destination: str = ""
    protocol: str = ""  # tcp, udp, sctp
    comment: str = ""
    dport: int = 0
    match: Match | None = None


@dataclass(frozen=True)
class Chain:
    """A chain of svcctl's and its rules. ``owner``: the Service port it was made for (None for
    the frame's chains), named when iptables refuses one of its rules."""

    name: str
    rules: tuple[Rule, ...]
    owner: PortRef | None = None


class Jump(NamedTuple):
    """A rule in a built-in chain that leads to one of svcctl's."""

    builtin: str
    rule: Rule


@dataclass(frozen=True)
class Table:
    name: TableName
    chains: tuple[Chain, ...]  # the frame's, then those made per Service port
    jumps: tuple[Jump, ...]  # in the order they stand in their built-in chains


@dataclass(frozen=True)
class FamilyRules:
    family: Family
    tables: tuple[Table, ...]  # in TableName order: filter, nat
    udp_endpoints: frozenset[tuple[str, int]]  # the UDP endpoints DNATed to (conntrack cleanup)


@dataclass(frozen=True)
class Ruleset:
    families: tuple[FamilyRules, ...]  # IPv4, then IPv6
    warnings: tuple[str, ...] = ()
