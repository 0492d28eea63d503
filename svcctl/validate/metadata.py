"""Names, namespaces, labels and annotations: the rules of ObjectMeta that every kind shares
(apimachinery's ValidateObjectMeta)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .. import formats
from ..model import Endpoints, EndpointSlice, Node, ObjectMeta, Pod, Service, ServiceCIDR
from ..problems import Key, Path
from .report import Reporter

# A Service's name becomes a DNS label (<name>.<namespace>.svc); other objects' names are subdomains.
NAME_RULE: dict[type, Callable[[str], Sequence[str]]] = {
    Service: formats.dns1035_label,
    Endpoints: formats.dns1123_subdomain,
    EndpointSlice: formats.dns1123_subdomain,
    Pod: formats.dns1123_subdomain,
    ServiceCIDR: formats.dns1123_subdomain,
    Node: formats.dns1123_subdomain,
}
MAX_ANNOTATIONS_BYTES = 256 << 10  # TotalAnnotationSizeLimitB: keys and values together, in bytes


def check_meta(meta: ObjectMeta, report: Reporter, model: type[Any]) -> None:
    """The metadata of an object of kind ``model``."""
    if not meta.name:
        report(("metadata", "name"), "Required value: name or generateName is required")
    else:
        errs = NAME_RULE[model](meta.name)
        if errs:
            report.invalid(("metadata", "name"), meta.name, errs)
    if model.namespaced:  # a cluster-scoped object's namespace was cleared, as the API server does
        errs = formats.dns1123_label(meta.namespace)
        if errs:
            report.invalid(("metadata", "namespace"), meta.namespace, errs)
    check_labels(meta.labels, ("metadata", "labels"), report)
    if meta.annotations:
        _check_annotations(meta.annotations, report)


def check_labels(labels: dict[str, str], path: Path, report: Reporter) -> None:
    for key, value in labels.items():
        errs = formats.qualified_name(key)
        if errs:
            report.invalid(path, key, errs)
        errs = formats.label_value(value)
        if errs:
            report.invalid((*path, Key(key)), value, errs)


def _check_annotations(annotations: dict[str, str], report: Reporter) -> None:
    path = ("metadata", "annotations")
    size = 0
    for key, value in annotations.items():
        # A qualified name, but in any case: the API server checks the key lower-cased.
        errs = formats.qualified_name(key.lower())
        if errs:
            report.invalid(path, key, errs)
        size += len(key.encode()) + len(value.encode())
    if size > MAX_ANNOTATIONS_BYTES:
        report(path, f"Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes")
