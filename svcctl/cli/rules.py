"""Commands that read or change the kernel's rules: apply (and its dry run), diff, delete."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..backends import backend
from ..options import Options
from ..pipeline import compile_rules
from ..sources import read_manifests
from .app import EXIT_DIFFERENT, EXIT_OK, app
from .manifests import say_skipped, warn
from .settings import NODE_SETTINGS, AllProblems, Manifests, Verbose, with_options


@app.command()
@with_options(*NODE_SETTINGS)
def apply(
    manifests: Manifests,
    options: Options,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check with the kernel and print the diff; change nothing.")] = False,
    verbose: Verbose = False,
    all_problems: AllProblems = False,
) -> None:
    """Load the ruleset into the kernel in one atomic transaction (only svcctl's tables).
    Exit 0 ok, 2 invalid input, 3 the kernel refused (nothing changed)."""
    inventory, plan, compiled = compile_rules(read_manifests(manifests), options, options.backend)
    say_skipped(inventory, verbose)
    warn(plan)
    result = backend(options.backend).apply(compiled, dry_run=dry_run)
    if dry_run:
        sys.stdout.write(result.diff)
        typer.echo(f"dry run: the kernel accepts the ruleset; apply would send: {result.summary}", err=True)
        return
    for warning in result.warnings:
        typer.echo(f"svcctl: warning: {warning}", err=True)
    typer.echo(f"applied: {result.summary}" if result.changed else "unchanged: the kernel already holds this ruleset")
    if verbose and result.conntrack_deleted:
        typer.echo(f"cleared UDP conntrack entries to {len(result.conntrack_deleted)} removed endpoint(s)", err=True)


@app.command()
@with_options(*NODE_SETTINGS)
def diff(manifests: Manifests, options: Options, all_problems: AllProblems = False) -> None:
    """Unified diff between what is live and what apply would make live.
    Exit 0 no differences, 1 differences, 2 invalid input or error."""
    rules = backend(options.backend)
    live = rules.snapshot(options)  # read while the plan is compiled
    _, _, compiled = compile_rules(read_manifests(manifests), options, options.backend)
    changes = rules.diff(compiled, live)
    sys.stdout.write(changes)
    raise typer.Exit(EXIT_DIFFERENT if changes else EXIT_OK)


@app.command()
@with_options("table", "backend", "config")
def delete(options: Options) -> None:
    """Remove svcctl's tables (ip and ip6) and nothing else. Exit 0, also when none was there."""
    gone, foreign = backend(options.backend).delete(options)
    typer.echo(f"deleted: table {' and table '.join(gone)}" if gone else f"nothing to delete: no table named {options.table} made by svcctl")
    for name in foreign:
        typer.echo(f"svcctl: left table {name} alone: svcctl did not make it", err=True)
