"""The edge where input comes in: manifest files, directories, standard input, the config file
and the machine's hostname. Everything after this module works on text (``load.Source``) and
values, never on paths (the pure core: same text and options in, same bytes out).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from .load import Inputs, RawObject, Source, parse
from .problems import InvalidInput, Problem

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def read_manifests(manifests: list[str]) -> Inputs:
    """Read every manifest argument: a file, a directory (its *.yaml, *.yml, *.json, sorted) or ``-``."""
    sources: list[Source] = []
    problems: list[Problem] = []
    for arg in manifests:
        if arg == "-":
            text = sys.stdin.read()
            sources.append(Source("-", text, looks_like_json(None, text)))
            continue
        path = Path(arg)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if is_manifest_name(p.name) and p.is_file())
            if not files:
                problems.append(Problem("directory holds no *.yaml, *.yml or *.json file", file=arg))
        else:
            files = [path]
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except FileNotFoundError:
                problems.append(Problem("no such file or directory", file=str(file)))
            except (OSError, UnicodeDecodeError) as err:
                problems.append(Problem(f"cannot read: {getattr(err, 'strerror', None) or err}", file=str(file)))
            else:
                sources.append(Source(str(file), text, looks_like_json(file.suffix, text)))
    return Inputs(sources, problems)


def is_manifest_name(name: str) -> bool:
    """Whether a file in a manifest directory is read: ``*.yaml``, ``*.yml``, ``*.json``, not
    hidden. Editors' and tools' temporary files are not (``.x.yaml.swp``, ``x.yaml~``,
    ``.#x.yaml``, ``#x.yaml#``, ``4913``, ``.x.yaml.tmp``; kubelet's ``..data``)."""
    return not name.startswith(".") and Path(name).suffix in MANIFEST_SUFFIXES


def looks_like_json(suffix: str | None, text: str) -> bool:
    if suffix is not None:
        return suffix == ".json"
    return text.lstrip()[:1] in ("{", "[")


def load(manifests: list[str]) -> tuple[list[RawObject], list[Problem]]:
    """Read and parse: the objects found, and the problems of what could not be read or parsed."""
    return parse(read_manifests(manifests))


def read_config(path: str) -> Source:
    """The text of a --config file. Raises InvalidInput when it cannot be read."""
    try:
        return Source(path, Path(path).read_text(encoding="utf-8"), False)
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput([Problem(f"cannot read config: {getattr(err, 'strerror', None) or err}", file=path)]) from None


def hostname() -> str:
    """This machine's node name as kubelet and kube-proxy derive it: the hostname, lower-cased."""
    return socket.gethostname().lower()
