"""The pure part of every command: manifests and options in, resolved Services out."""

from __future__ import annotations

from .load import gc_paused, load
from .options import Options
from .plan import Ruleset, plan
from .render import render_nft
from .problems import InvalidInput
from .resolve import ResolvedService, resolve
from .validate import Inventory, validate


# Each entry point pauses the garbage collector while it builds (see load.gc_paused); nested
# pauses are no-ops, so the outermost one decides.


@gc_paused()
def read_inventory(manifests: list[str], options: Options) -> Inventory:
    """Load and validate. Raises InvalidInput with every problem: unreadable files, bad YAML/JSON
    and invalid objects are all reported together."""
    objects, problems = load(manifests)
    try:
        inventory = validate(objects, options.node_port_range)
    except InvalidInput as err:
        problems.extend(err.problems)
        raise InvalidInput(problems) from None
    if problems:
        raise InvalidInput(problems)
    return inventory


@gc_paused()
def read_services(manifests: list[str], options: Options) -> tuple[Inventory, list[ResolvedService]]:
    inventory = read_inventory(manifests, options)
    return inventory, resolve(inventory, options)


@gc_paused()  # the plan adds ~10 objects per endpoint to an already huge heap
def compile_ruleset(manifests: list[str], options: Options) -> tuple[Inventory, Ruleset, str]:
    """Manifests in, the plan and its nft text out: everything before the kernel.
    Deterministic: the same manifests and options give the same bytes."""
    inventory, services = read_services(manifests, options)
    ruleset = plan(services, options)
    return inventory, ruleset, render_nft(ruleset)
