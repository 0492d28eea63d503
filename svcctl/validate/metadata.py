"""Names, namespaces and labels: the rules of ObjectMeta that every kind shares."""

from __future__ import annotations

from typing import Callable, Sequence

from .. import formats
from ..model import Endpoints, EndpointSlice, ObjectMeta, Pod, Service
from ..problems import Key, Path
from .report import Reporter

# A Service's name becomes a DNS label (<name>.<namespace>.svc); other objects' names are subdomains.
NAME_RULE: dict[type, Callable[[str], Sequence[str]]] = {
    Service: formats.dns1035_label,
    Endpoints: formats.dns1123_subdomain,
    EndpointSlice: formats.dns1123_subdomain,
    Pod: formats.dns1123_subdomain,
}


def check_meta(meta: ObjectMeta, report: Reporter, name_check: Callable[[str], Sequence[str]]) -> None:
    if not meta.name:
        report(("metadata", "name"), "Required value: name or generateName is required")
    else:
        errs = name_check(meta.name)
        if errs:
            report.invalid(("metadata", "name"), meta.name, errs)
    errs = formats.dns1123_label(meta.namespace)
    if errs:
        report.invalid(("metadata", "namespace"), meta.namespace, errs)
    check_labels(meta.labels, ("metadata", "labels"), report)


def check_labels(labels: dict[str, str], path: Path, report: Reporter) -> None:
    for key, value in labels.items():
        errs = formats.qualified_name(key)
        if errs:
            report.invalid(path, key, errs)
        errs = formats.label_value(value)
        if errs:
            report.invalid((*path, Key(key)), value, errs)
