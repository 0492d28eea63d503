"""Options shared by several commands: the manifests argument, the node settings (declared once,
given to every command that takes them) and how the problems of bad input are listed."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Optional, get_type_hints

import typer

from ..options import build_options
from ..sources import hostname, read_config


@dataclass
class Report:
    """How bad input is listed: capped, unless --all-problems (or -v) asks for every line."""

    all_problems: bool = False


REPORT = Report()


def _show_all(value: bool) -> bool:
    if value:
        REPORT.all_problems = True
    return value


Manifests = Annotated[
    list[str],
    typer.Argument(metavar="MANIFEST", help="A manifest file, a directory (its *.yaml, *.yml, *.json) or - for standard input."),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also say which objects were skipped; list every problem.", callback=_show_all)]
AllProblems = Annotated[bool, typer.Option("--all-problems", help="List every problem of bad input, not only the first ones.", callback=_show_all)]

# The settings of Options (svcctl.options) as command-line options: parameter name -> declaration.
# A setting's name is its parameter's, with "-" for "_" (node_name: --node-name, node-name:).
_SETTINGS: dict[str, Any] = {
    "node_name": Annotated[Optional[str], typer.Option("--node-name", metavar="NAME", help="This node's name (default: the hostname).")],
    "node_zone": Annotated[Optional[str], typer.Option("--node-zone", metavar="ZONE", help="This node's zone, for topology-aware routing (default: the topology.kubernetes.io/zone label of the Node named --node-name in the input).")],
    "cluster_cidr": Annotated[Optional[list[str]], typer.Option("--cluster-cidr", metavar="CIDR", help="The pod network (repeatable); traffic to a service IP from outside it is masqueraded.")],
    "nodeport_addresses": Annotated[Optional[list[str]], typer.Option("--nodeport-addresses", metavar="CIDR", help="NodePorts answer only on local addresses in these ranges (repeatable).")],
    "masquerade_all": Annotated[Optional[bool], typer.Option("--masquerade-all", help="Masquerade all traffic to ClusterIPs, as kube-proxy's flag does.", show_default=False)],
    "table": Annotated[Optional[str], typer.Option("--table", metavar="NAME", help="Name of svcctl's nftables tables, one per family (default: svcctl).")],
    "service_cidr": Annotated[Optional[list[str]], typer.Option("--service-cidr", metavar="CIDR", help="The ranges cluster IPs come from (repeatable): allocation, and traffic to addresses in them that no Service holds is dropped (default: 10.96.0.0/12 and fd00:10:96::/112).")],
    "service_node_port_range": Annotated[Optional[str], typer.Option("--service-node-port-range", metavar="FIRST-LAST", help="Valid node ports (default: 30000-32767).")],
    "backend": Annotated[Optional[str], typer.Option("--backend", metavar="BACKEND", help="The kernel interface the rules are written for: nftables (default) or iptables.")],
    "iptables_mode": Annotated[Optional[str], typer.Option("--iptables-mode", metavar="MODE", help="With --backend iptables: auto (default: the iptables the node uses), nft (iptables-nft) or legacy (iptables-legacy).")],
    "config": Annotated[Optional[str], typer.Option("--config", metavar="FILE", help="YAML file with the same settings (flags win).")],
}
NODE_SETTINGS = tuple(_SETTINGS)  # compile, apply and diff take them all


def with_options(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command these settings as options, and call it with ``options``: the Options
    built from them (and from --config). One declaration for every command that takes them."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command)
        hints = get_type_hints(command, include_extras=True)  # typer needs the Annotated objects
        own = [p.replace(annotation=hints[p.name]) for p in signature.parameters.values() if p.name != "options"]
        added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_SETTINGS[n]) for n in names]

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            given = {n: kwargs.pop(n) for n in names}
            flags = {n.replace("_", "-"): v for n, v in given.items() if n != "config"}
            if flags.get("masquerade-all") is False:
                flags["masquerade-all"] = None  # not given: the config file may say otherwise
            config = read_config(given["config"]) if given.get("config") else None
            command(options=build_options(flags, config, hostname()), **kwargs)

        run.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
        run.__annotations__ = {**{p.name: p.annotation for p in own}, **{n: _SETTINGS[n] for n in names}}
        return run

    return decorate

