"""The typed step: raw manifests into the models of svcctl.model, and pydantic's errors into
problems worded as the API server words them, at the field paths it prints."""

from __future__ import annotations

from functools import lru_cache
from types import NoneType, UnionType
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from ..load import Origin, RawObject
from ..model import KINDS, OneOf, ref as object_ref
from ..problems import Key, Path, Problem, plain, show_ref, show_value
from .metadata import check_meta
from .report import Entry, Reporter


def typed(item: RawObject, problems: list[Problem], skipped: list[tuple[str, Origin]]) -> Reporter | None:
    """The object as its model, in the reporter of its problems; or None: when it does not
    type-check (its problems are added) or is of a kind svcctl does not use (added to
    ``skipped``). Values outside an enum are reported here, and the rules still run on the
    object (they only compare such fields with enum members): all problems at once."""
    data, origin = item.data, item.origin
    api_version, kind = data.get("apiVersion"), data.get("kind")
    for field, value in (("apiVersion", api_version), ("kind", kind)):
        if value is not None and not isinstance(value, str):
            problems.append(Problem(f"Invalid value: {show_value(value)}: must be a string", (field,), origin))
            return None
    model = KINDS.get((api_version, kind))  # type: ignore[arg-type]
    if model is None:
        ref = _raw_ref(model, data.get("metadata"))
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
            problems.append(Problem(f"Unsupported value: {show_value(api_version)}: {kind} is served as {show_value(wanted)}", ("apiVersion",), origin, kind, ref))
        else:
            skipped.append((f"{plain(f'{api_version}/{kind}')} {show_ref(ref)}", origin))
        return None
    outside_enums: list[str] = []  # see model.OneOf
    try:
        obj = model.model_validate(data, context=outside_enums)
    except ValidationError as err:
        ref = _raw_ref(model, data.get("metadata"))
        for e in _dedupe(err.errors()):
            path = _field_path(model, e["loc"])
            if e["type"] == "nested":  # many problems found by svcctl.bulk in one list
                for subpath, message in e["ctx"]["errors"]:
                    problems.append(Problem(message, (*path, *subpath), origin, str(kind), ref))
            else:
                problems.append(Problem(_message(e), path, origin, str(kind), ref))
        _check_meta_alone(model, data, origin, problems)
        return None
    report = Reporter(Entry(obj, origin), problems)
    if outside_enums:
        _unsupported_values(obj, (), report)
    return report


def _raw_ref(model: Any, meta: Any) -> str:
    """The ref of an object that has not type-checked: what of its name and namespace are strings."""
    meta = meta if isinstance(meta, dict) else {}
    name, namespace = meta.get("name"), meta.get("namespace")
    name = name if isinstance(name, str) else ""
    namespace = namespace if isinstance(namespace, str) and namespace else "default"
    return object_ref(model, namespace, name) if model is not None else f"{namespace}/{name}"


class _Named(NamedTuple):
    kind: str
    ref: str


def _check_meta_alone(model: type[Any], data: dict[str, Any], origin: Origin, problems: list[Problem]) -> None:
    """When an object does not type-check, its metadata may still: check the name, namespace and
    labels too, so that these problems come in the same run as the type errors."""
    meta_model = model.model_fields["metadata"].annotation
    raw = data.get("metadata")
    raw = raw if isinstance(raw, dict) else {}
    wrong: set[Any] = set()
    try:
        meta = meta_model.model_validate(raw)
    except ValidationError as err:
        # Check what is well typed: the fields with type errors (reported already) left out,
        # and not said to be missing either (`name: 5` is no "Required value").
        wrong = {e["loc"][0] for e in err.errors() if e["loc"]}
        try:
            meta = meta_model.model_validate({k: v for k, v in raw.items() if k not in wrong})
        except ValidationError:
            return
    named = _Named(data["kind"], object_ref(model, meta.namespace, meta.name))
    found: list[Problem] = []
    check_meta(meta, Reporter(Entry(named, origin), found), model)
    problems += [p for p in found if not (len(p.path) > 1 and p.path[1] in wrong)]


def _unsupported_values(obj: BaseModel, path: Path, report: Reporter) -> None:
    """Report every enum-typed field holding a value outside its enum (see model.OneOf)."""
    for name, alias, shape, enum in _enum_fields(type(obj)):
        value = getattr(obj, name)
        if value is None:
            continue
        items = list(enumerate(value)) if shape.endswith("s") else [(None, value)]
        for i, item in items:
            where = (*path, alias) if i is None else (*path, alias, i)
            if shape.startswith("model"):
                _unsupported_values(item, where, report)
            elif not isinstance(item, enum):
                choices = ", ".join(f'"{v}"' for v in sorted(enum._value2member_map_))
                report(where, f"Unsupported value: {show_value(item)}: supported values: {choices}")


@lru_cache(maxsize=None)
def _enum_fields(cls: type[BaseModel]) -> tuple[tuple[str, str, str, Any], ...]:
    """The fields of a model class that hold enum values or models that do: (name, alias,
    shape: value/values/model/models, enum class or model class)."""
    out: list[tuple[str, str, str, Any]] = []
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


# ---- pydantic's errors, as the API server words them ---------------------------------------

_WANT = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "string_type": "a string", "bool_type": "a boolean", "dict_type": "an object",
    "model_type": "an object", "model_attributes_type": "an object", "list_type": "a list",
    "tuple_type": "a list",
}


def _message(error: Any) -> str:
    kind_of_error, value = error["type"], error.get("input")
    if kind_of_error == "missing":
        return "Required value"
    if kind_of_error == "extra_forbidden":
        return "unknown field (not part of this kind's schema)"
    want = _WANT.get(kind_of_error)
    return f"Invalid value: {show_value(value)}: " + (f"must be {want}" if want else error["msg"])


def _field_path(model: type[BaseModel], loc: tuple[Any, ...]) -> Path:
    """pydantic's location of an error as the API server's field path: the keys of a map (labels,
    a selector) become ``Key`` parts, printed ``[key]``. Walks the model's annotations along."""
    path: list[str | int] = []
    annotation: Any = model
    for part in loc:
        inner = _unwrapped(annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            field = _fields_by_alias(inner).get(part)
            annotation = field.annotation if field is not None else Any  # an unknown field
            path.append(part)
        elif get_origin(inner) in (list, tuple):
            annotation = get_args(inner)[0]
            path.append(part)
        elif get_origin(inner) is dict:
            annotation = get_args(inner)[1]
            path.append(Key(part))
        else:
            path.append(part)
    return tuple(path)


def _unwrapped(annotation: Any) -> Any:
    """The type inside Annotated[...] and X | None."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = annotation.__origin__
        elif get_origin(annotation) in (Union, UnionType):
            others = [a for a in get_args(annotation) if a is not NoneType]
            if len(others) != 1:
                return annotation
            annotation = others[0]
        else:
            return annotation


@lru_cache(maxsize=None)
def _fields_by_alias(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {info.alias or name: info for name, info in model.model_fields.items()}
