"""The pure part of every command: manifest texts and options in, resolved Services, the plan
and a back end's rules out. Reading files, standard input, the config file and the hostname
happens before (svcctl.sources); the kernel after (the back ends' transports)."""

from __future__ import annotations

from typing import Iterator

from .backends import Compiled, backend
from .cluster import options_for
from .load import Inputs, RawObject, gc_paused, parse
from .options import Options
from .plan import Plan, plan
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
        inventory = validate(_handed_out(objects), options.node_port_range)
    except InvalidInput as err:
        problems.extend(err.problems)
        raise InvalidInput(problems) from None
    if problems:
        raise InvalidInput(problems)
    return inventory


def _handed_out(objects: list[RawObject]) -> Iterator[RawObject]:
    """Each object, dropped from the list as it is handed out: what it was parsed into is freed
    once it is typed, and the typed objects take that memory (a dump's raw objects are ~140 MB
    at 10,000 Services)."""
    objects.reverse()
    while objects:
        yield objects.pop()


def cluster_options(inventory: Inventory, options: Options) -> Options:
    """The node settings with what the input's cluster objects add (svcctl.cluster)."""
    return options_for(options, (e.obj for e in inventory.service_cidrs), (e.obj for e in inventory.nodes))


@gc_paused()
def read_services(inputs: Inputs, options: Options) -> tuple[Inventory, list[ResolvedService]]:
    inventory = read_inventory(inputs, options)
    return inventory, resolve(inventory, cluster_options(inventory, options))


@gc_paused()  # the plan adds ~10 objects per endpoint to an already huge heap
def plan_rules(inputs: Inputs, options: Options) -> tuple[Inventory, Plan]:
    """Manifest texts in, the plan every back end compiles (and ``svcctl trace`` reads) out."""
    inventory, services = read_services(inputs, options)
    return inventory, plan(services, cluster_options(inventory, options))


@gc_paused()
def compile_rules(inputs: Inputs, options: Options, backend_name: str = "nftables") -> tuple[Inventory, Plan, Compiled]:
    """Manifest texts in, the plan and a back end's rules out: everything before the kernel.
    Deterministic: the same texts and options give the same bytes."""
    inventory, rules_plan = plan_rules(inputs, options)
    return inventory, rules_plan, backend(backend_name).compile(rules_plan, options)
