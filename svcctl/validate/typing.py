"""The typed step: raw manifests into the models of svcctl.model, and pydantic's errors into
problems worded as the API server words them."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, NamedTuple, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..load import Origin, RawObject
from ..model import KINDS, OneOf
from ..problems import Path, Problem, show_value
from .metadata import NAME_RULE, check_meta
from .report import Entry, Reporter


def typed(item: RawObject, problems: list[Problem], skipped: list[tuple[str, Origin]]) -> Entry[Any] | None:
    """The object as its model, or None: when it does not type-check (its problems are added) or
    is of a kind svcctl does not use (added to ``skipped``)."""
    data, origin = item.data, item.origin
    api_version, kind = data.get("apiVersion"), data.get("kind")
    for field, value in (("apiVersion", api_version), ("kind", kind)):
        if value is not None and not isinstance(value, str):
            problems.append(Problem(f"Invalid value: {show_value(value)}: must be a string", (field,), origin))
            return None
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    ref = f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"
    model = KINDS.get((api_version, kind))  # type: ignore[arg-type]
    if model is None:
        if not api_version and kind in {k for _, k in KINDS}:
            problems.append(Problem("Required value", ("apiVersion",), origin, str(kind), ref))
        elif kind == "EndpointSlice" and api_version == "discovery.k8s.io/v1beta1":
            problems.append(
                Problem(
                    'Unsupported value: "discovery.k8s.io/v1beta1": no longer served since Kubernetes 1.25; '
                    'use "discovery.k8s.io/v1"',
                    ("apiVersion",), origin, kind, ref,
                )
            )
        elif not kind:
            problems.append(Problem("Required value", ("kind",), origin))
        elif _same_group_other_version(api_version, kind):
            # e.g. `v2` Service: kubectl would fail ("no matches for kind"). A Service of another
            # API group (Knative's serving.knative.dev/v1) is another kind, and skipped.
            wanted = next(v for v, k in KINDS if k == kind)
            problems.append(Problem(f'Unsupported value: "{api_version}": {kind} is served as "{wanted}"', ("apiVersion",), origin, kind, ref))
        else:
            skipped.append((f"{api_version}/{kind} {ref}", origin))
        return None
    try:
        entry = Entry(model.model_validate(data), origin)
    except ValidationError as err:
        for e in _dedupe(err.errors()):
            if e["type"] == "nested":  # many problems found by svcctl.bulk in one list
                for subpath, message in e["ctx"]["errors"]:
                    problems.append(Problem(message, (*e["loc"], *subpath), origin, kind, ref))
            else:
                problems.append(_pydantic_problem(e, origin, kind, ref))
        _check_meta_alone(model, data, origin, problems)
        return None
    return entry


class _Named(NamedTuple):
    kind: str
    ref: str


def _check_meta_alone(model: type[Any], data: dict[str, Any], origin: Origin, problems: list[Problem]) -> None:
    """When an object does not type-check, its metadata may still: check the name, namespace and
    labels too, so that these problems come in the same run as the type errors."""
    meta_model = model.model_fields["metadata"].annotation
    raw = data.get("metadata")
    try:
        meta = meta_model.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError:
        return  # its problems are among the type errors already reported
    named = _Named(data["kind"], f"{meta.namespace}/{meta.name}")
    check_meta(meta, Reporter(Entry(named, origin), problems), NAME_RULE[model])


def unsupported_values(obj: BaseModel, path: Path, report: Reporter) -> None:
    """Report every enum-typed field holding a value outside its enum (see model.OneOf)."""
    for name, alias, shape, enum in _enum_fields(type(obj)):
        value = getattr(obj, name)
        if value is None:
            continue
        items = list(enumerate(value)) if shape.endswith("s") else [(None, value)]
        for i, item in items:
            where = (*path, alias) if i is None else (*path, alias, i)
            if shape.startswith("model"):
                unsupported_values(item, where, report)
            elif not isinstance(item, enum):
                choices = ", ".join(f'"{v}"' for v in sorted(enum._value2member_map_))
                report(where, f'Unsupported value: "{item}": supported values: {choices}')


@lru_cache(maxsize=None)
def _enum_fields(cls: type[BaseModel]) -> tuple[tuple[str, str, str, Any], ...]:
    """The fields of a model class that hold enum values or models that do: (name, alias,
    shape: value/values/model/models, enum class or model class)."""
    out = []
    for name, info in cls.model_fields.items():
        alias = info.alias or name
        marker = next((m for m in info.metadata if isinstance(m, OneOf)), None)
        if marker:
            out.append((name, alias, "value", marker.enum))
            continue
        plural = get_origin(info.annotation) in (list, tuple)  # else a single value, maybe None
        for arg in _flatten(info.annotation):
            if isinstance(arg, OneOf):
                out.append((name, alias, "values" if plural else "value", arg.enum))
            elif isinstance(arg, type) and issubclass(arg, BaseModel) and _enum_fields(arg):
                out.append((name, alias, "models" if plural else "model", arg))
    return tuple(out)


def _flatten(annotation: Any) -> list[Any]:
    """Every type and Annotated metadata inside an annotation (list[...], X | None, ...)."""
    if get_origin(annotation) is Annotated:
        return [*annotation.__metadata__, *_flatten(annotation.__origin__)]
    found = [annotation]
    for arg in get_args(annotation):
        found += _flatten(arg)
    return found


def _same_group_other_version(api_version: Any, kind: Any) -> bool:
    """An apiVersion of the group svcctl reads this kind from, but not the version it reads."""
    if not isinstance(api_version, str):
        return False
    group = api_version.rpartition("/")[0]
    return any(k == kind and v.rpartition("/")[0] == group for v, k in KINDS)


def _dedupe(errors: list[Any]) -> list[Any]:
    seen, out = set(), []
    for e in errors:
        key = tuple(e["loc"])
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def _pydantic_problem(error: Any, origin: Origin, kind: str, ref: str) -> Problem:
    path = tuple(p for p in error["loc"] if isinstance(p, int) or not p.startswith(("function-", "json-or-python")))
    kind_of_error, value = error["type"], error.get("input")
    if kind_of_error == "missing":
        message = "Required value"
    elif kind_of_error == "extra_forbidden":
        message = "unknown field (not part of this kind's schema)"
    elif kind_of_error in ("enum", "literal_error"):
        expected = error.get("ctx", {}).get("expected", "")
        choices = ", ".join(sorted(s.strip() for s in expected.replace(" or ", ",").split(",") if s.strip()))
        message = f"Unsupported value: {show_value(value)}: supported values: {choices.replace(chr(39), chr(34))}"
    else:
        want = {
            "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
            "string_type": "a string", "bool_type": "a boolean", "dict_type": "an object",
            "model_type": "an object", "model_attributes_type": "an object", "list_type": "a list",
        }.get(kind_of_error)
        message = f"Invalid value: {show_value(value)}: must be {want}" if want else f"Invalid value: {show_value(value)}: {error['msg']}"
    return Problem(message, path, origin, kind, ref)
