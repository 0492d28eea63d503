"""The command line (cli-contract.md). The only module that prints or decides exit statuses.

Exit statuses: 0 ok; 1 ``diff`` found differences; 2 invalid input (or any other error a user
can cause); 3 the kernel refused or is out of reach (missing privileges or support).
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated, Optional

import typer

from . import show as show_output
from . import transport
from .kernel import KernelError, Refused
from .options import Options, build_options
from .pipeline import compile_ruleset, read_inventory, read_services
from .problems import InvalidInput
from .validate import Inventory

EXIT_OK, EXIT_DIFFERENT, EXIT_INVALID, EXIT_KERNEL = 0, 1, 2, 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Compile Kubernetes Services into nftables rules and load them, without a cluster.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

Manifests = Annotated[
    list[str],
    typer.Argument(help="Manifest files, directories (every *.yaml, *.yml, *.json inside) or - for standard input."),
]
NodeName = Annotated[Optional[str], typer.Option("--node-name", help="This node's name (default: the hostname).")]
ClusterCIDR = Annotated[Optional[list[str]], typer.Option("--cluster-cidr", help="The pod network (repeatable); traffic to a service IP from outside it is masqueraded.")]
NodePortAddresses = Annotated[Optional[list[str]], typer.Option("--nodeport-addresses", help="NodePorts answer only on local addresses in these ranges (repeatable).")]
MasqueradeAll = Annotated[Optional[bool], typer.Option("--masquerade-all", help="Masquerade all service traffic.", show_default=False)]
Table = Annotated[Optional[str], typer.Option("--table", help="Name of svcctl's nftables tables, one per family [default: svcctl].")]
Config = Annotated[Optional[str], typer.Option("--config", help="YAML file with the same settings (flags win).")]
ServiceCIDR = Annotated[Optional[list[str]], typer.Option("--service-cidr", help="Ranges cluster IPs are allocated from, one per family [default: 10.96.0.0/12, fd00:10:96::/112].")]
NodePortRange = Annotated[Optional[str], typer.Option("--service-node-port-range", help="Valid node ports [default: 30000-32767].")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also say which objects were skipped.")]


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def _options(
    config: str | None = None,
    node_name: str | None = None,
    cluster_cidr: list[str] | None = None,
    nodeport_addresses: list[str] | None = None,
    masquerade_all: bool | None = None,
    table: str | None = None,
    service_cidr: list[str] | None = None,
    node_port_range: str | None = None,
) -> Options:
    return build_options(
        config,
        {
            "node-name": node_name,
            "cluster-cidr": cluster_cidr,
            "nodeport-addresses": nodeport_addresses,
            "masquerade-all": masquerade_all or None,
            "table": table,
            "service-cidr": service_cidr,
            "service-node-port-range": node_port_range,
        },
    )


def _say_skipped(inventory: Inventory, verbose: bool) -> None:
    if verbose:
        for what, origin in inventory.skipped:
            typer.echo(f"{origin.source.name}:{origin.line}: skipped {what} (not a kind svcctl uses)", err=True)


@app.command()
def validate(
    manifests: Manifests,
    service_node_port_range: NodePortRange = None,
    config: Config = None,
    verbose: Verbose = False,
) -> None:
    """Parse and validate only; list every problem. Exit 0 valid, 2 invalid."""
    options = _options(config, node_port_range=service_node_port_range)
    inventory = read_inventory(manifests, options)
    _say_skipped(inventory, verbose)
    counts = f"{len(inventory.services)} Service(s), {len(inventory.endpoints)} Endpoints, {len(inventory.slices)} EndpointSlice(s), {len(inventory.pods)} Pod(s)"
    typer.echo(f"valid: {counts}")


@app.command()
def show(
    manifests: Manifests,
    output: Annotated[Format, typer.Option("--output", "-o", help="table or json.")] = Format.TABLE,
    node_name: NodeName = None,
    service_cidr: ServiceCIDR = None,
    service_node_port_range: NodePortRange = None,
    config: Config = None,
    verbose: Verbose = False,
) -> None:
    """Show every Service port with its addresses and resolved endpoints."""
    options = _options(config, node_name=node_name, service_cidr=service_cidr, node_port_range=service_node_port_range)
    inventory, services = read_services(manifests, options)
    _say_skipped(inventory, verbose)
    render = show_output.render_json if output is Format.JSON else show_output.render_table
    sys.stdout.write(render(services))


@app.command("compile")
def compile_(
    manifests: Manifests,
    node_name: NodeName = None,
    cluster_cidr: ClusterCIDR = None,
    nodeport_addresses: NodePortAddresses = None,
    masquerade_all: MasqueradeAll = None,
    table: Table = None,
    config: Config = None,
    service_cidr: ServiceCIDR = None,
    service_node_port_range: NodePortRange = None,
    verbose: Verbose = False,
) -> None:
    """Print the complete ruleset that apply would load (nft syntax), changing nothing."""
    options = _options(config, node_name, cluster_cidr, nodeport_addresses, masquerade_all, table, service_cidr, service_node_port_range)
    inventory, _, text = compile_ruleset(manifests, options)
    _say_skipped(inventory, verbose)
    sys.stdout.write(text)


@app.command()
def apply(
    manifests: Manifests,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check with the kernel and print the diff; change nothing.")] = False,
    node_name: NodeName = None,
    cluster_cidr: ClusterCIDR = None,
    nodeport_addresses: NodePortAddresses = None,
    masquerade_all: MasqueradeAll = None,
    table: Table = None,
    config: Config = None,
    service_cidr: ServiceCIDR = None,
    service_node_port_range: NodePortRange = None,
    verbose: Verbose = False,
) -> None:
    """Load the ruleset into the kernel in one atomic transaction (only svcctl's tables).
    Exit 0 ok, 2 invalid input, 3 the kernel refused (nothing changed)."""
    options = _options(config, node_name, cluster_cidr, nodeport_addresses, masquerade_all, table, service_cidr, service_node_port_range)
    inventory, ruleset, text = compile_ruleset(manifests, options)
    _say_skipped(inventory, verbose)
    result = transport.apply(ruleset, text, dry_run=dry_run)
    if dry_run:
        sys.stdout.write(result.diff)
        typer.echo(f"dry run: the kernel accepts the ruleset; apply would send: {result.transaction.summary}", err=True)
        return
    for warning in result.warnings:
        typer.echo(f"svcctl: warning: {warning}", err=True)
    typer.echo(f"applied: {result.transaction.summary}" if result.transaction.script else "unchanged: the kernel already holds this ruleset")
    if verbose and result.conntrack_deleted:
        typer.echo(f"cleared UDP conntrack entries to {len(result.conntrack_deleted)} removed endpoint(s)", err=True)


@app.command()
def diff(
    manifests: Manifests,
    node_name: NodeName = None,
    cluster_cidr: ClusterCIDR = None,
    nodeport_addresses: NodePortAddresses = None,
    masquerade_all: MasqueradeAll = None,
    table: Table = None,
    config: Config = None,
    service_cidr: ServiceCIDR = None,
    service_node_port_range: NodePortRange = None,
) -> None:
    """Unified diff between what is live and what apply would make live.
    Exit 0 no differences, 1 differences, 2 invalid input or error."""
    options = _options(config, node_name, cluster_cidr, nodeport_addresses, masquerade_all, table, service_cidr, service_node_port_range)
    _, ruleset, text = compile_ruleset(manifests, options)
    changes = transport.diff(ruleset, text)
    sys.stdout.write(changes)
    raise typer.Exit(EXIT_DIFFERENT if changes else EXIT_OK)


@app.command()
def delete(table: Table = None, config: Config = None) -> None:
    """Remove svcctl's tables (ip and ip6) and nothing else. Exit 0, also when none was there."""
    options = _options(config, table=table)
    gone = transport.delete(options.table)
    typer.echo(f"deleted: table {' and table '.join(gone)}" if gone else f"nothing to delete: no table named {options.table}")


def main() -> None:
    """Entry point: runs the app and turns every error a user can cause into a message and a status.
    Usage errors (unknown option, bad choice) are typer's to report: it prints them and exits 2."""
    try:
        app()
    except InvalidInput as err:
        for line in err.lines():
            print(line, file=sys.stderr)
        sys.exit(EXIT_INVALID)
    except Refused as err:
        print(f"svcctl: {transport.describe_refusal(err)}", file=sys.stderr)
        sys.exit(EXIT_KERNEL)
    except KernelError as err:
        print(f"svcctl: {err}", file=sys.stderr)
        sys.exit(EXIT_KERNEL)
    except Exception as err:  # noqa: BLE001 - the contract: no traceback for anything a user can cause
        if os.environ.get("SVCCTL_DEBUG"):
            raise
        print(f"svcctl: internal error: {type(err).__name__}: {err} (set SVCCTL_DEBUG=1 for details)", file=sys.stderr)
        sys.exit(EXIT_INVALID)
