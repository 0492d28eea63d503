"""Commands that only read manifests: validate, show, compile. No root needed."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from .. import show as show_output
from ..options import Options
from ..pipeline import cluster_options, compile_rules, read_inventory, read_services
from ..plan import Plan, plan
from ..sources import read_manifests
from ..topology import unemulated
from ..validate import Inventory
from . import colour
from .app import app, kept
from .settings import NODE_SETTINGS, AllProblems, Manifests, Verbose, with_options


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def warn(plan: Plan) -> None:
    for warning in plan.warnings:
        typer.echo(f"svcctl: warning: {warning}", err=True)


def say_skipped(inventory: Inventory, verbose: bool) -> None:
    """With -v: the objects svcctl skips, and what of the input it does not emulate."""
    if verbose:
        for what, origin in inventory.skipped:
            typer.echo(f"{origin.source.name}:{origin.line}: skipped {what} (not a kind svcctl uses)", err=True)
        for entry in unemulated(inventory):
            typer.echo(
                f"svcctl: warning: {entry.origin.source.name}:{entry.origin.line}: Service {entry.obj.ref}: topology-mode Auto is not "
                "emulated: svcctl does not compute the EndpointSlice controller's proportional zone hints, so the endpoints it makes "
                "from Pods or Endpoints have none (give EndpointSlices to use a cluster's hints)",
                err=True,
            )


@app.command()
@with_options("service_node_port_range", "config")
def validate(manifests: Manifests, options: Options, verbose: Verbose = False, all_problems: AllProblems = False) -> None:
    """Parse and validate the manifests as the API server would; list every problem.

    \b
    Examples:
      svcctl validate manifests/
      kubectl get svc,endpointslices,pods -A -o json | svcctl validate -
    Exit status: 0 valid, 2 invalid (one line per problem: FILE:LINE: Kind ns/name: field: message).
    """
    inventory = kept(read_inventory(read_manifests(manifests), options))
    say_skipped(inventory, verbose)
    counts = (
        f"{len(inventory.services)} Service(s), {len(inventory.endpoints)} Endpoints, {len(inventory.slices)} EndpointSlice(s), "
        f"{len(inventory.pods)} Pod(s), {len(inventory.service_cidrs)} ServiceCIDR(s), {len(inventory.nodes)} Node(s)"
    )
    typer.echo(f"valid: {counts}")


@app.command()
@with_options("node_name", "node_zone", "service_cidr", "service_node_port_range", "config")
def show(
    manifests: Manifests,
    options: Options,
    output: Annotated[Format, typer.Option("--output", "-o", metavar="table|json|yaml", help="A table for people, JSON or YAML for scripts.")] = Format.TABLE,
    verbose: Verbose = False,
    all_problems: AllProblems = False,
) -> None:
    """Show every Service port with its addresses, resolved endpoints and each endpoint's
    chance of a new connection.

    \b
    Examples:
      svcctl show web.yaml --node-name node-1
      svcctl show manifests/ -o json | jq '.[].ports[].endpoints'
    Exit status: 0 ok, 2 invalid input.
    """
    inventory, services = kept(read_services(read_manifests(manifests), options))
    say_skipped(inventory, verbose)
    found = show_output.chances(plan(services, cluster_options(inventory, options)))
    if output is Format.TABLE:
        table = show_output.render_table(services, found)
        sys.stdout.write(colour.header(table) if colour.enabled(sys.stdout) else table)
    else:
        render = show_output.render_json if output is Format.JSON else show_output.render_yaml
        sys.stdout.write(render(services, found))


@app.command("compile")
@with_options(*NODE_SETTINGS)
def compile_(manifests: Manifests, options: Options, verbose: Verbose = False, all_problems: AllProblems = False) -> None:
    """Print the complete ruleset that apply would load (nft syntax), changing nothing.

    \b
    Examples:
      svcctl compile web.yaml --node-name node-1 --cluster-cidr 10.244.0.0/16
      svcctl compile manifests/ --config node.yaml > rules.nft && nft -c -f rules.nft
    Exit status: 0 ok, 2 invalid input.
    """
    inventory, plan, compiled = kept(compile_rules(read_manifests(manifests), options, options.backend))
    say_skipped(inventory, verbose)
    warn(plan)
    sys.stdout.write(compiled.text)
