"""The pure part of every command: manifests and options in, resolved Services out."""

from __future__ import annotations

from .load import gc_paused, load
from .options import Options
from .plan import Ruleset, plan
from .render import render_nft
from .problems import InvalidInput
from .resolve import ResolvedService, resolve
from .validate import Inventory, validate


def read_inventory(manifests: list[str], options: Options) -> Inventory:
    """Load and validate. Raises InvalidInput with every problem: unreadable files, bad YAML/JSON
    and invalid objects are all reported together."""
    with gc_paused():
        return _read_inventory(manifests, options)


def _read_inventory(manifests: list[str], options: Options) -> Inventory:
    objects, problems = load(manifests)
    try:
        inventory = validate(objects, options.node_port_range)
    except InvalidInput as err:
        problems.extend(err.problems)
        raise InvalidInput(problems) from None
    if problems:
        raise InvalidInput(problems)
    return inventory


def read_services(manifests: list[str], options: Options) -> tuple[Inventory, list[ResolvedService]]:
    with gc_paused():
        inventory = read_inventory(manifests, options)
        return inventory, resolve(inventory, options)


def compile_ruleset(manifests: list[str], options: Options) -> tuple[Inventory, Ruleset, str]:
    """Manifests in, the plan and its nft text out: everything before the kernel.
    Deterministic: the same manifests and options give the same bytes."""
    with gc_paused():  # the plan adds ~10 objects per endpoint to an already huge heap
        inventory, services = read_services(manifests, options)
        ruleset = plan(services, options)
        return inventory, ruleset, render_nft(ruleset)
