"""The command line (cli-contract.md). The only module that prints or decides exit statuses.

Exit statuses: 0 ok; 1 ``diff`` found differences; 2 invalid input (or any other error a user
can cause); 3 the kernel refused or is out of reach (missing privileges or support).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from enum import StrEnum
from typing import Annotated, Any, Callable, Optional, get_type_hints

import typer

from . import show as show_output
from . import transport
from .kernel import KernelError, Refused
from .options import Options, build_options
from .pipeline import compile_ruleset, read_inventory, read_services
from .plan import Ruleset
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
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also say which objects were skipped.")]

# The settings of Options (svcctl.options) as command-line options: parameter name -> declaration.
# A setting's name is its parameter's, with "-" for "_" (node_name: --node-name, node-name:).
_SETTINGS: dict[str, Any] = {
    "node_name": Annotated[Optional[str], typer.Option("--node-name", help="This node's name (default: the hostname).")],
    "cluster_cidr": Annotated[Optional[list[str]], typer.Option("--cluster-cidr", help="The pod network (repeatable); traffic to a service IP from outside it is masqueraded.")],
    "nodeport_addresses": Annotated[Optional[list[str]], typer.Option("--nodeport-addresses", help="NodePorts answer only on local addresses in these ranges (repeatable).")],
    "masquerade_all": Annotated[Optional[bool], typer.Option("--masquerade-all", help="Masquerade all service traffic.", show_default=False)],
    "table": Annotated[Optional[str], typer.Option("--table", help="Name of svcctl's nftables tables, one per family (default: svcctl).")],
    "service_cidr": Annotated[Optional[list[str]], typer.Option("--service-cidr", help="Ranges cluster IPs are allocated from, one per family (default: 10.96.0.0/12 and fd00:10:96::/112).")],
    "service_node_port_range": Annotated[Optional[str], typer.Option("--service-node-port-range", help="Valid node ports (default: 30000-32767).")],
    "config": Annotated[Optional[str], typer.Option("--config", help="YAML file with the same settings (flags win).")],
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
            command(options=build_options(given.get("config"), flags), **kwargs)

        run.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
        run.__annotations__ = {**{p.name: p.annotation for p in own}, **{n: _SETTINGS[n] for n in names}}
        return run

    return decorate


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def _warn(ruleset: Ruleset) -> None:
    for warning in ruleset.warnings:
        typer.echo(f"svcctl: warning: {warning}", err=True)


def _say_skipped(inventory: Inventory, verbose: bool) -> None:
    if verbose:
        for what, origin in inventory.skipped:
            typer.echo(f"{origin.source.name}:{origin.line}: skipped {what} (not a kind svcctl uses)", err=True)


@app.command()
@with_options("service_node_port_range", "config")
def validate(manifests: Manifests, options: Options, verbose: Verbose = False) -> None:
    """Parse and validate only; list every problem. Exit 0 valid, 2 invalid."""
    inventory = read_inventory(manifests, options)
    _say_skipped(inventory, verbose)
    counts = f"{len(inventory.services)} Service(s), {len(inventory.endpoints)} Endpoints, {len(inventory.slices)} EndpointSlice(s), {len(inventory.pods)} Pod(s)"
    typer.echo(f"valid: {counts}")


@app.command()
@with_options("node_name", "service_cidr", "service_node_port_range", "config")
def show(
    manifests: Manifests,
    options: Options,
    output: Annotated[Format, typer.Option("--output", "-o", help="table or json.")] = Format.TABLE,
    verbose: Verbose = False,
) -> None:
    """Show every Service port with its addresses and resolved endpoints."""
    inventory, services = read_services(manifests, options)
    _say_skipped(inventory, verbose)
    render = show_output.render_json if output is Format.JSON else show_output.render_table
    sys.stdout.write(render(services))


@app.command("compile")
@with_options(*NODE_SETTINGS)
def compile_(
    manifests: Manifests,
    options: Options,
    verbose: Verbose = False,
) -> None:
    """Print the complete ruleset that apply would load (nft syntax), changing nothing."""
    inventory, ruleset, text = compile_ruleset(manifests, options)
    _say_skipped(inventory, verbose)
    _warn(ruleset)
    sys.stdout.write(text)


@app.command()
@with_options(*NODE_SETTINGS)
def apply(
    manifests: Manifests,
    options: Options,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check with the kernel and print the diff; change nothing.")] = False,
    verbose: Verbose = False,
) -> None:
    """Load the ruleset into the kernel in one atomic transaction (only svcctl's tables).
    Exit 0 ok, 2 invalid input, 3 the kernel refused (nothing changed)."""
    inventory, ruleset, text = compile_ruleset(manifests, options)
    _say_skipped(inventory, verbose)
    _warn(ruleset)
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
@with_options(*NODE_SETTINGS)
def diff(
    manifests: Manifests,
    options: Options,
) -> None:
    """Unified diff between what is live and what apply would make live.
    Exit 0 no differences, 1 differences, 2 invalid input or error."""
    _, ruleset, text = compile_ruleset(manifests, options)
    changes = transport.diff(ruleset, text)
    sys.stdout.write(changes)
    raise typer.Exit(EXIT_DIFFERENT if changes else EXIT_OK)


@app.command()
@with_options("table", "config")
def delete(options: Options) -> None:
    """Remove svcctl's tables (ip and ip6) and nothing else. Exit 0, also when none was there."""
    gone, foreign = transport.delete(options.table)
    typer.echo(f"deleted: table {' and table '.join(gone)}" if gone else f"nothing to delete: no table named {options.table} made by svcctl")
    for name in foreign:
        typer.echo(f"svcctl: left table {name} alone: svcctl did not make it", err=True)


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
