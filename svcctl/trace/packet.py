"""The packet a trace follows: the first packet of a new connection, as ``--from``, ``--to`` and
``--protocol`` describe it. Bad values are one-line problems (exit 2)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from ..formats import canonical_ip, endpoint_text, ip_version, packed_ip
from ..model import Protocol
from ..options import Network
from ..problems import InvalidInput, Problem

NODE = "node"  # --from node: traffic this node sends itself
# The default sources are documentation addresses (RFC 5737, RFC 3849): no real client has them,
# so a trace from them shows what any client outside the cluster gets. ``--from node`` without an
# address stands for the node's own address (outside the cluster CIDRs, as a node's IP is).
OUTSIDE = {4: "203.0.113.1", 6: "2001:db8::1"}
NODE_ADDRESS = {4: "192.0.2.1", 6: "2001:db8::2"}


@dataclass(frozen=True)
class Packet:
    """A new connection's first packet. ``local``: sent by this node itself (it takes the output
    hooks, not prerouting). ``assumed``: the source is a default, not one the user gave."""

    source: str
    destination: str
    port: int
    protocol: Protocol
    local: bool = False
    assumed: bool = False

    @property
    def version(self) -> int:
        return ip_version(self.destination)

    @property
    def to(self) -> str:
        """``10.96.0.10:80``, ``[fd00::1]:80``."""
        return endpoint_text(self.destination, self.port)


def _problem(option: str, message: str) -> Problem:
    return Problem(f"{option}: {message}", file="command line")


def _address(text: str) -> str | None:
    return canonical_ip(text) if packed_ip(text) is not None else None


def parse_destination(text: str) -> tuple[str, int] | Problem:
    """``IP:PORT`` or ``[IPv6]:PORT``."""
    bad = _problem("--to", f'"{text}" is not an address and port (e.g. 10.96.0.10:80 or [fd00:10:96::10]:80)')
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii():
        return bad
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            return bad
    elif ":" in host:
        return bad  # IPv6 needs brackets, or the port cannot be told from the address
    address = _address(host)
    if address is None:
        return bad
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified or ip.is_multicast:
        return _problem("--to", f'"{text}": a new connection goes to one host, not to {"an unspecified" if ip.is_unspecified else "a multicast"} address')
    if not 1 <= int(port) <= 65535:
        return _problem("--to", f'"{text}": the port must be between 1 and 65535')
    return address, int(port)


def packet(to: str, source: str | None, protocol: Protocol, cluster_cidrs: Iterable[Network]) -> Packet:
    """The packet of ``--to``, ``--from`` (None: the default) and ``--protocol``. ``--from`` is an
    address, ``node`` (this node, from its own address) or ``node:IP`` (this node, from that one
    of its addresses). Raises InvalidInput with one problem per bad option."""
    problems: list[Problem] = []
    destination = parse_destination(to)
    if isinstance(destination, Problem):
        problems.append(destination)
    local = assumed = False
    address: str | None = None
    if source is not None:
        text = source
        if source == NODE or source.startswith(NODE + ":"):
            local, text = True, source[len(NODE) + 1:]
        if text:
            address = _address(text)
            if address is None:
                problems.append(_problem("--from", f'"{source}" is not an IP address, "node" or "node:IP"'))
    if problems:
        raise InvalidInput(problems)
    assert not isinstance(destination, Problem)
    host, port = destination
    version = ip_version(host)
    if address is None:
        assumed = True
        address = (NODE_ADDRESS if local else OUTSIDE)[version]
        inside = [n for n in cluster_cidrs if ipaddress.ip_address(address) in n]
        if inside:
            raise InvalidInput([_problem("--from", f"the default source {address} lies inside --cluster-cidr {inside[0]}: give --from")])
    else:
        ip = ipaddress.ip_address(address)
        if ip.version != version:
            raise InvalidInput([_problem("--from", f"{source} is IPv{ip.version}, but --to {to} is IPv{version}")])
        if ip.is_unspecified or ip.is_multicast:
            raise InvalidInput([_problem("--from", f"{address} is no address a connection comes from")])
        if not local and ip.is_loopback:
            # The kernel drops a packet from a loopback address that arrives from outside (martian).
            raise InvalidInput([_problem("--from", f"{address} is a loopback address: only the node sends from it (--from node:{address})")])
    return Packet(address, host, port, protocol, local, assumed)
