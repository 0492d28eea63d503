"""Typing of the bulk of a cluster dump: the endpoint lists of EndpointSlices and Endpoints.

A cluster of 10,000 Services has ~100,000 endpoints and, in a kubectl dump, each appears in an
EndpointSlice and again in an Endpoints object. pydantic-core was measured here at ~12 us per
small nested model (1.2 s for 100,000 endpoints); this hand-written check of the same schema,
building NamedTuples, is ~10x faster (NamedTuples: a frozen dataclass's __init__ costs 3x more). It is strict the same way the pydantic models are:
unknown fields and wrong types are errors, ``null`` means absent.

Errors are handed to pydantic as one custom error carrying every (path, message) found, which
``validate`` expands into one problem per field.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

from pydantic_core import PydanticCustomError

from .problems import Key, Path, show_value

# A schema is a type (str, bool), a dict of field name -> schema (an object; unknown fields are
# errors), [schema] (a list of it), or {str: str} (a map of strings).
_OBJECT_REFERENCE = {
    "kind": str, "namespace": str, "name": str, "uid": str,
    "apiVersion": str, "resourceVersion": str, "fieldPath": str,
}
_NAMES = [{"name": str}]
_ENDPOINT = {
    "addresses": [str],
    "conditions": {"ready": bool, "serving": bool, "terminating": bool},
    "hostname": str,
    "targetRef": _OBJECT_REFERENCE,
    "deprecatedTopology": {str: str},
    "nodeName": str,
    "zone": str,
    "hints": {"forZones": _NAMES, "forNodes": _NAMES},
}
_ENDPOINT_ADDRESS = {"ip": str, "hostname": str, "nodeName": str, "targetRef": _OBJECT_REFERENCE}
_TYPE_NAMES = {str: "a string", bool: "a boolean"}


def _conform(value: Any, schema: Any, path: Path, errors: list[tuple[Path, str]]) -> None:
    # This runs for every field of 100,000s of endpoints: objects are tested first (most calls
    # are for them), scalars are checked inline by their container (a call per string would
    # double the cost), and lists of scalars by a plain loop (cheaper than all() on a generator).
    if type(schema) is dict:
        if type(value) is not dict:
            errors.append((path, f"Invalid value: {show_value(value)}: must be an object"))
        elif str in schema:  # a map of strings
            for key, item in value.items():
                if type(item) is not str:
                    errors.append(((*path, Key(key)), f"Invalid value: {show_value(item)}: must be a string"))
        else:
            for key, item in value.items():
                sub = schema.get(key)
                if sub is None:
                    errors.append(((*path, key), "unknown field (not part of this kind's schema)"))
                elif item is not None and type(item) is not sub:
                    _conform(item, sub, (*path, key), errors)
    elif type(schema) is list:
        if type(value) is not list:
            errors.append((path, f"Invalid value: {show_value(value)}: must be a list"))
            return
        item_schema = schema[0]
        if type(item_schema) is type:
            for item in value:
                if type(item) is not item_schema:
                    break
            else:
                return
        for i, item in enumerate(value):
            _conform(item, item_schema, (*path, i), errors)
    elif type(value) is not schema:  # bool is an int in Python, but not in JSON: the exact type
        errors.append((path, f"Invalid value: {show_value(value)}: must be {_TYPE_NAMES[schema]}"))


class Endpoint(NamedTuple):
    """discovery.k8s.io/v1 Endpoint. A missing ready or serving means true, a missing
    terminating false (the API's documented meaning of absent conditions)."""

    addresses: tuple[str, ...]
    ready: bool
    serving: bool
    terminating: bool
    node_name: str
    zone: str
    hostname: str
    zone_hints: tuple[str, ...] = ()  # hints.forZones[].name: the zones that should use this endpoint
    node_hints: tuple[str, ...] = ()  # hints.forNodes[].name: the nodes that should use it


class EndpointAddress(NamedTuple):
    """v1 EndpointAddress."""

    ip: str
    node_name: str
    hostname: str


def _msgspec_type(schema: Any, field: bool = False) -> Any:
    """The type msgspec checks a value of ``schema`` against, as ``_conform`` does: strict
    types, unknown fields refused; an object's field may be null (it is absent), nothing else."""
    import msgspec

    if type(schema) is type:
        found: Any = schema
    elif type(schema) is list:
        found = list[_msgspec_type(schema[0])]  # type: ignore[misc]
    elif str in schema:
        found = dict[str, str]
    else:
        fields = [(name, _msgspec_type(sub, field=True), None) for name, sub in schema.items()]
        found = msgspec.defstruct("Object", fields, forbid_unknown_fields=True)
    return found | None if field else found


def _conforms(schema: Any) -> Callable[[Any], bool]:
    """A test that ``_conform`` finds nothing wrong with a list of ``schema``: msgspec's, at C
    speed (a dump holds 100,000s of endpoints; 3x faster than _conform). False only says to
    ask ``_conform``, which words what is wrong."""
    import msgspec

    wanted: Any = list[_msgspec_type(schema)]  # type: ignore[misc]

    def conforms(value: Any) -> bool:
        try:
            msgspec.convert(value, wanted)
        except msgspec.ValidationError:
            return False
        return True

    return conforms


def _typed_list(schema: dict[str, Any], required: str, build: Callable[[dict[str, Any]], Any]) -> Callable[[Any], tuple[Any, ...]]:
    conforms: Callable[[Any], bool] | None = None  # made on first use: msgspec is imported then

    def validate(value: Any) -> tuple[Any, ...]:
        nonlocal conforms
        if value is None:
            return ()
        if conforms is None:
            conforms = _conforms(schema)
        if conforms(value) and all(item.get(required) is not None for item in value):
            return tuple(map(build, value))
        errors: list[tuple[Path, str]] = []
        _conform(value, [schema], (), errors)
        if not errors:
            errors += [((i, required), "Required value") for i, item in enumerate(value) if item.get(required) is None]
        if errors:
            raise PydanticCustomError("nested", "{count} problem(s)", {"count": len(errors), "errors": errors})
        return tuple(build(item) for item in value)

    return validate


_new_endpoint: Callable[[tuple[Any, ...]], Endpoint] = functools.partial(tuple.__new__, Endpoint)  # type: ignore[arg-type]


def _endpoint(d: dict[str, Any]) -> Endpoint:
    c = d.get("conditions") or {}
    ready = c.get("ready")
    serving = c.get("serving")
    hints = d.get("hints")
    # tuple.__new__ with every field: NamedTuple's own __new__ (Python) costs as much again.
    return _new_endpoint(
        (
            tuple(d["addresses"]),
            ready is not False,
            serving if serving is not None else True,
            c.get("terminating") is True,
            d.get("nodeName") or "",
            d.get("zone") or "",
            d.get("hostname") or "",
            *((_hint_names(hints.get("forZones")), _hint_names(hints.get("forNodes"))) if hints else ((), ())),
        )
    )


def _hint_names(hints: list[dict[str, Any]] | None) -> tuple[str, ...]:
    # A hint without a name has the empty name, as Go decodes it.
    return tuple(h.get("name") or "" for h in hints) if hints else ()


def _endpoint_address(d: dict[str, Any]) -> EndpointAddress:
    return EndpointAddress(ip=d["ip"], node_name=d.get("nodeName") or "", hostname=d.get("hostname") or "")


endpoints = _typed_list(_ENDPOINT, "addresses", _endpoint)
endpoint_addresses = _typed_list(_ENDPOINT_ADDRESS, "ip", _endpoint_address)
