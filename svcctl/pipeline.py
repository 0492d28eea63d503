"""The pure part of every command: manifests and options in, resolved Services out."""

from __future__ import annotations

from .load import gc_paused, load
from .options import Options
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
