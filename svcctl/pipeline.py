"""The pure part of every command: manifest texts and options in, resolved Services and rules out.
Reading files, standard input, the config file and the hostname happens before (svcctl.sources)."""

from __future__ import annotations

from .load import Inputs, gc_paused, parse
from .options import Options
from .plan import Ruleset, plan
from .render import render_nft
from .problems import InvalidInput
from .resolve import ResolvedService, resolve
from .validate import Inventory, validate


# Each entry point pauses the garbage collector while it builds (see load.gc_paused); nested
# pauses are no-ops, so the outermost one decides.


@gc_paused()
def read_inventory(inputs: Inputs, options: Options) -> Inventory:
    """Parse and validate. Raises InvalidInput with every problem: inputs that could not be
    read, bad YAML/JSON and invalid objects are all reported together."""
    objects, problems = parse(inputs)
    try:
        inventory = validate(objects, options.node_port_range)
    except InvalidInput as err:
        problems.extend(err.problems)
        raise InvalidInput(problems) from None
    if problems:
        raise InvalidInput(problems)
    return inventory


@gc_paused()
def read_services(inputs: Inputs, options: Options) -> tuple[Inventory, list[ResolvedService]]:
    inventory = read_inventory(inputs, options)
    return inventory, resolve(inventory, options)


@gc_paused()  # the plan adds ~10 objects per endpoint to an already huge heap
def compile_ruleset(inputs: Inputs, options: Options) -> tuple[Inventory, Ruleset, str]:
    """Manifest texts in, the plan and its nft text out: everything before the kernel.
    Deterministic: the same texts and options give the same bytes."""
    inventory, services = read_services(inputs, options)
    ruleset = plan(services, options)
    return inventory, ruleset, render_nft(ruleset)
