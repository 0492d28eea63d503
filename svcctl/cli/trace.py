"""``svcctl trace``: what the rules do to a new connection, and (``--kernel``) whether the kernel
agrees. Needs no root without ``--kernel``."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Optional

import typer

from ..model import Protocol
from ..options import Options
from ..backends import backend
from ..pipeline import plan_rules
from ..sources import read_manifests
from .app import EXIT_DIFFERENT, app, kept
from .manifests import say_skipped, warn
from .settings import NODE_SETTINGS, AllProblems, Manifests, Verbose, with_options


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
@with_options(*NODE_SETTINGS)
def trace(
    manifests: Manifests,
    options: Options,
    to: Annotated[str, typer.Option("--to", metavar="IP:PORT", help="The destination: IP:PORT, or [IPv6]:PORT.", show_default=False)],
    source: Annotated[Optional[str], typer.Option("--from", metavar="SOURCE", help='The source: an IP address, "node" (this node itself) or "node:IP" (default: 203.0.113.1 or 2001:db8::1, a client outside the cluster).', show_default=False)] = None,
    protocol: Annotated[Protocol, typer.Option("--protocol", case_sensitive=False, show_default=False, help="tcp (default), udp or sctp.")] = Protocol.TCP,
    output: Annotated[Format, typer.Option("--output", "-o", help="text or json.")] = Format.TEXT,
    kernel: Annotated[bool, typer.Option("--kernel", help="Also send probes through the compiled rules in a throwaway network namespace (root) and compare.")] = False,
    live: Annotated[bool, typer.Option("--live", help="As --kernel, through a copy of the rules the kernel holds now (read only).")] = False,
    verbose: Verbose = False,
    all_problems: AllProblems = False,
) -> None:
    """Explain what the rules do to a new connection: verdict, endpoints with exact probabilities,
    masquerade, affinity, and why.

    \b
    Examples:
      svcctl trace web.yaml --node-name node-1 --cluster-cidr 10.244.0.0/16 --to 10.96.0.10:80
      svcctl trace web.yaml --to 192.168.1.10:30080 --from 10.244.1.5 -o json
      svcctl trace manifests/ --to 10.96.0.10:80 --from node --live
    Exit status: 0 traced (whatever the verdict), 1 --kernel/--live found the kernel disagreeing,
    2 invalid input, 3 --kernel/--live cannot use the kernel.
    """
    # The trace package (~4 ms of imports) is loaded by this command only.
    from ..trace import packet, render, trace as follow
    from ..trace.kernel import can_probe, check

    probe = packet(to, source, protocol, options.cluster_cidrs)
    kernel = kernel or live
    if kernel:
        can_probe(options.backend)
    inventory, plan = kept(plan_rules(read_manifests(manifests), options))
    say_skipped(inventory, verbose)
    warn(plan)
    result = follow(plan, probe)
    # --kernel: the rules compiled from this very plan (--live: the kernel's own) get the probes.
    verdict = check(backend(options.backend).compile(plan, options), result, live) if kernel else None
    write = render.as_json if output is Format.JSON else render.text
    sys.stdout.write(write(result, verdict))
    if verdict is not None and not verdict.agrees:
        raise typer.Exit(EXIT_DIFFERENT)
