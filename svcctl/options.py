"""Node and cluster settings: command-line flags, optionally read from a YAML config file.

A config file holds the same settings as the flags, under the flags' names without the dashes
in front (``node-name: n1``, ``cluster-cidr: [10.244.0.0/16]``); flags given on the command line win.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from . import formats
from .load import Source, parse_yaml_document
from .problems import InvalidInput, Problem, show_value

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_TABLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}\Z")
# Names svcctl will not take: the tables of iptables-nft (and so Docker, firewalld, kube-proxy's
# iptables mode), and words nft reads as keywords where a table name stands.
_RESERVED_TABLES = frozenset(
    "nat filter mangle raw security broute firewalld "
    "table chain set map element rule flowtable ip ip6 inet arp bridge netdev counter quota limit meter ct meta fib".split()
)
DEFAULT_SERVICE_CIDRS = ("10.96.0.0/12", "fd00:10:96::/112")


@dataclass(frozen=True)
class NodePortRange:
    first: int = 30000
    last: int = 32767

    def __contains__(self, port: int) -> bool:
        return self.first <= port <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


class IptablesMode(StrEnum):
    """Which iptables the iptables back end writes with: the one the node uses (``auto``), or
    iptables-nft or iptables-legacy."""

    AUTO = "auto"
    NFT = "nft"
    LEGACY = "legacy"


@dataclass(frozen=True)
class Options:
    """Everything besides the manifests that decides the ruleset."""

    node_name: str = ""
    # This node's zone (topology-aware routing, svcctl.topology); "": the zone label of the Node
    # named node_name in the input, if there is one (svcctl.resolve.this_node).
    node_zone: str = ""
    cluster_cidrs: tuple[Network, ...] = ()
    nodeport_addresses: tuple[Network, ...] = ()
    masquerade_all: bool = False
    table: str = "svcctl"
    service_cidrs: tuple[Network, ...] = field(
        default_factory=lambda: tuple(ipaddress.ip_network(c) for c in DEFAULT_SERVICE_CIDRS)
    )
    node_port_range: NodePortRange = NodePortRange()
    backend: str = "nftables"
    iptables_mode: IptablesMode = IptablesMode.AUTO
    # This node's primary IP per family, from its Node object in the input (svcctl.cluster): not a
    # setting of its own.
    node_ips: tuple[str, ...] = ()


# setting name (flag without dashes) -> Options field
_SETTINGS = {
    "node-name": "node_name",
    "node-zone": "node_zone",
    "cluster-cidr": "cluster_cidrs",
    "nodeport-addresses": "nodeport_addresses",
    "masquerade-all": "masquerade_all",
    "table": "table",
    "service-cidr": "service_cidrs",
    "service-node-port-range": "node_port_range",
    "backend": "backend",
    "iptables-mode": "iptables_mode",
}



def build_options(flags: dict[str, Any], config: Source | None = None, hostname: str = "") -> Options:
    """Merge a config file's text (if any) and flags (None = not given) into checked Options.
    ``hostname`` is the node name when neither sets one (svcctl.sources.hostname() at the edge).
    Raises InvalidInput listing every bad setting."""
    settings: dict[str, Any] = {}
    problems: list[Problem] = []
    config_file = config.name if config else ""
    if config is not None:
        # Read as manifests are: one line at FILE:LINE:COLUMN for a syntax error, bounded nesting.
        loaded, bad = parse_yaml_document(config)
        if bad:
            raise InvalidInput(bad)
        loaded = loaded or {}
        if not isinstance(loaded, dict):
            raise InvalidInput([Problem("a config file must be a mapping of settings", file=config_file)])
        for key, value in loaded.items():
            if value is None:
                continue  # `key:` with nothing after it: not set
            if key not in _SETTINGS:
                known = ", ".join(_SETTINGS)
                problems.append(Problem(f'unknown setting "{key}" (known: {known})', file=config_file))
            else:
                settings[key] = value
    for key, value in flags.items():
        if value is not None and value != () and value != []:
            settings[key] = value

    values: dict[str, Any] = {}
    for key, value in settings.items():
        try:
            values[_SETTINGS[key]] = _convert(key, value)
        except ValueError as err:
            problems.append(Problem(f"{key}: {err}", file=config_file if key not in flags or flags[key] is None else "command line"))
    if problems:
        raise InvalidInput(problems)
    options = replace(Options(), **values)
    if not options.node_name:
        options = replace(options, node_name=hostname)
    return options


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


# Settings that are words: a config file's `node-name: 5` or `node-zone: true` is no string
# (flags always are).
_WORDS = frozenset({"table", "node-name", "node-zone", "backend", "iptables-mode"})


def _convert(key: str, value: Any) -> Any:
    if key in _WORDS and not isinstance(value, str):
        raise ValueError(f"Invalid value: {show_value(value)}: must be a string")
    if key in ("cluster-cidr", "nodeport-addresses", "service-cidr"):
        nets = []
        for item in _as_list(value):
            net = formats.parse_cidr(str(item))
            if net is None:
                raise ValueError(f'"{item}" is not a CIDR (e.g. 10.244.0.0/16 or fd00:244::/56)')
            nets.append(net)
        if key == "service-cidr":
            if len({n.version for n in nets}) != len(nets) or len(nets) > 2:
                raise ValueError("at most one range per IP family")
        return tuple(nets)
    if key == "masquerade-all":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if key == "table":
        if not _TABLE_NAME.match(value):
            raise ValueError(f'"{value}" is not a valid table name (lower case letters, digits and "_", at most 31, starting with a letter)')
        if value in _RESERVED_TABLES:
            raise ValueError(f'"{value}" is the name of other tools\' tables or an nft keyword: choose another')
        return value
    if key == "node-name":
        if formats.dns1123_subdomain(value):
            raise ValueError(f'"{value}" is not a valid node name (a DNS-1123 subdomain)')
        return value
    if key == "node-zone":
        if formats.label_value(value):
            raise ValueError(f'"{value}" is not a valid zone (a label value: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)')
        return value
    if key == "service-node-port-range":
        match = re.fullmatch(r"([0-9]+)-([0-9]+)", str(value).strip())  # not \d: other scripts' digits
        if not match or not 1 <= int(match[1]) <= int(match[2]) <= 65535:
            raise ValueError(f'"{value}" is not a port range like 30000-32767')
        return NodePortRange(int(match[1]), int(match[2]))
    if key == "backend":
        from .backends import names  # options is imported by backends

        if value not in names():
            raise ValueError(f'"{value}" is not a back end svcctl has (known: {", ".join(names())})')
        return value
    if key == "iptables-mode":
        if value not in tuple(IptablesMode):
            raise ValueError(f'"{value}" is not an iptables mode (known: {", ".join(IptablesMode)})')
        return IptablesMode(value)
    raise AssertionError(key)
