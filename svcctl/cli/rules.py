"""Commands that read or change the kernel's rules: apply (and its dry run), diff, delete."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..backends import backend
from ..options import Options
from ..pipeline import compile_rules
from ..sources import read_manifests
from . import colour
from .app import EXIT_DIFFERENT, EXIT_OK, app, kept
from .manifests import say_skipped, warn
from .settings import NODE_SETTINGS, AllProblems, Manifests, Verbose, with_options


@app.command()
@with_options(*NODE_SETTINGS)
def apply(
    manifests: Manifests,
    options: Options,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check with the kernel and print the diff; change nothing.")] = False,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload",
            help="Rewrite svcctl's tables whole, even where nothing seems to differ: repairs rules edited by hand inside "
            "svcctl's nftables chains, which apply does not read. Session affinity state is kept.",
        ),
    ] = False,
    verbose: Verbose = False,
    all_problems: AllProblems = False,
) -> None:
    """Load the rules into the kernel in one atomic transaction, changing only svcctl's tables.

    Only what changed is sent; an unchanged manifest sends nothing. Needs root (CAP_NET_ADMIN).

    \b
    Examples:
      svcctl apply manifests/ --node-name node-1 --cluster-cidr 10.244.0.0/16
      svcctl apply --dry-run manifests/ --config /etc/svcctl/node.yaml
    Exit status: 0 ok, 2 invalid input (nothing changed), 3 the kernel refused or is out of reach
    (nothing changed).
    """
    inventory, plan, compiled = kept(compile_rules(read_manifests(manifests), options, options.backend))
    say_skipped(inventory, verbose)
    warn(plan)
    result = backend(options.backend).apply(compiled, dry_run=dry_run, reload=reload)
    if dry_run:
        sys.stdout.write(colour.diff(result.diff) if colour.enabled(sys.stdout) else result.diff)
        typer.echo(f"dry run: the kernel accepts the ruleset; apply would send: {result.summary}", err=True)
        return
    for warning in result.warnings:
        typer.echo(f"svcctl: warning: {warning}", err=True)
    typer.echo(f"applied: {result.summary}" if result.changed else "unchanged: the kernel already holds this ruleset")
    if verbose and result.conntrack_deleted:
        typer.echo(f"cleared UDP conntrack entries to {len(result.conntrack_deleted)} removed endpoint(s)", err=True)
    if verbose and result.conntrack_bypassing:
        typer.echo(f"cleared UDP conntrack entries that bypassed {len(result.conntrack_bypassing)} new Service port(s)", err=True)


@app.command()
@with_options(*NODE_SETTINGS)
def diff(
    manifests: Manifests,
    options: Options,
    raw: Annotated[bool, typer.Option("--raw", help="The kernel-level diff: rules and names as listed, hashes included.")] = False,
    all_problems: AllProblems = False,
) -> None:
    """Show what apply would change: per Service port, then the rules (live -> planned).

    \b
    Examples:
      svcctl diff manifests/ --config /etc/svcctl/node.yaml
      svcctl diff --raw web.yaml --node-name node-1
    Exit status: 0 no differences, 1 differences, 2 invalid input, 3 the kernel cannot be read.
    """
    rules = backend(options.backend)
    live = rules.snapshot(options)  # read while the plan is compiled
    _, _, compiled = kept(compile_rules(read_manifests(manifests), options, options.backend))
    changes = rules.diff(compiled, live, raw)
    sys.stdout.write(colour.diff(changes) if colour.enabled(sys.stdout) else changes)
    raise typer.Exit(EXIT_DIFFERENT if changes else EXIT_OK)


@app.command()
@with_options("table", "backend", "iptables_mode", "config")
def delete(options: Options) -> None:
    """Remove svcctl's tables (nftables: ip and ip6) or chains (iptables) and nothing else.

    \b
    Examples:
      svcctl delete
      svcctl delete --table k8s_services
      svcctl delete --backend iptables
    Exit status: 0 (also when there was nothing to delete), 2 bad options, 3 no privileges.
    """
    said, notes = backend(options.backend).delete(options)
    typer.echo(said)
    for note in notes:
        typer.echo(f"svcctl: {note}", err=True)
