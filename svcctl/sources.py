"""The edge where input comes in: manifest files, directories, standard input, the config file
and the machine's hostname. Everything after this module works on text (``load.Source``) and
values, never on paths (the pure core: same text and options in, same bytes out).

Reading is bounded, so that no input can hang or exhaust svcctl: all manifests of one run
together may hold ``MAX_INPUT_BYTES`` (a kubectl dump of 50,000 Services with their
EndpointSlices is ~360 MB as JSON; parsing 512 MiB already takes ~3 GB of memory); a named pipe
is read once a writer opens it, within ``PIPE_WAIT`` seconds; anything else that is no regular
file (/dev/zero, a terminal, a socket) is refused, except standard input (``-``).
"""

from __future__ import annotations

import codecs
import os
import socket
import stat
import sys
import time
from pathlib import Path
from typing import AnyStr, Callable

from .load import Inputs, RawObject, Source, parse
from .problems import InvalidInput, Problem, show_file

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_INPUT_BYTES = 512 << 20
PIPE_WAIT = 10.0  # seconds; `svcctl validate <(kubectl get ...)` has its writer from the start
_CHUNK = 1 << 20


class _Unreadable(Exception):
    """An input that is not read, and why (the message of its problem)."""


class _NotAFile(_Unreadable):
    def __init__(self) -> None:
        super().__init__("not a regular file or a pipe")


class _Budget:
    """What is left of MAX_INPUT_BYTES for the inputs of this run."""

    def __init__(self) -> None:
        self.left = MAX_INPUT_BYTES

    def take(self, data: AnyStr) -> AnyStr:
        if len(data) > self.left:
            raise _Unreadable(f"larger than the {MAX_INPUT_BYTES >> 20} MiB svcctl reads in one run (all manifests together)")
        self.left -= len(data)
        return data


def read_manifests(manifests: list[str]) -> Inputs:
    """Read every manifest argument: a file, a directory (its *.yaml, *.yml, *.json, sorted) or ``-``."""
    sources: list[Source] = []
    problems: list[Problem] = []
    budget = _Budget()
    seen: set[tuple[int, ...]] = set()  # a file named twice (a directory and a file in it) is read once
    for arg in manifests:
        if arg == "-":
            _add(sources, problems, "-", None, lambda: _read_stdin(budget))
            continue
        if not arg:  # Path("") is ".": an empty argument must not read the current directory
            problems.append(Problem("empty argument: a manifest is a file, a directory or - for standard input", file=show_file(arg)))
            continue
        path = Path(arg)
        if path.is_dir():
            try:
                files = sorted(p for p in path.iterdir() if is_manifest_name(p.name) and p.is_file())
            except OSError as err:
                problems.append(Problem(f"cannot read directory: {err.strerror or err}", file=show_file(arg)))
                continue
            if not files:
                problems.append(Problem("directory holds no *.yaml, *.yml or *.json file", file=show_file(arg)))
        else:
            files = [path]
        for file in files:
            identity = _identity(str(file))
            if identity is not None:
                if identity[:2] in seen:
                    continue
                seen.add(identity[:2])
            _add(sources, problems, show_file(str(file)), file.suffix, lambda f=file: _read_file(str(f), budget), str(file))  # type: ignore[misc]
    return Inputs(sources, problems)


def read_manifest_file(path: str) -> Source | Problem:
    """One manifest file, read as ``read_manifests`` reads each (bounded, UTF-8 checked):
    its source, or the problem that kept it from being read (for svcctl run's directory)."""
    sources: list[Source] = []
    problems: list[Problem] = []
    _add(sources, problems, show_file(path), Path(path).suffix, lambda: _read_file(path, _Budget()), argument=False)
    return sources[0] if sources else problems[0]


def _add(
    sources: list[Source], problems: list[Problem], name: str, suffix: str | None, read: Callable[[], bytes | str],
    path: str | None = None, argument: bool = True,
) -> None:
    """Read one input into a source, or say why it could not be read. A regular file at ``path``
    that did not change while it was read may be read again (Source.release). ``argument``: it
    was named on the command line, where ``-`` is standard input."""
    try:
        before = _identity(path)
        text = _decoded(read())
    except FileNotFoundError:
        problems.append(Problem("no such file or directory", file=name))
    except OSError as err:
        problems.append(Problem(f"cannot read: {err.strerror or err}", file=name))
    except _Unreadable as err:
        problems.append(Problem(f"{err} (use - for standard input)" if argument and isinstance(err, _NotAFile) else str(err), file=name))
    except UnicodeDecodeError as err:
        problems.append(_not_utf8(name, err))
    else:
        same = before is not None and before == _identity(path)
        sources.append(Source(name, text, looks_like_json(suffix, text), _reread(path, before) if same else None))


def _identity(path: str | None) -> tuple[int, ...] | None:
    """What tells a regular file's content changed: the inode, size and modification time."""
    try:
        info = os.stat(path) if path is not None else None
    except OSError:
        return None
    if info is None or not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _reread(path: str | None, identity: tuple[int, ...] | None) -> Callable[[], str | None]:
    def reread() -> str | None:
        try:
            text = _decoded(_read_file(str(path), _Budget()))
        except (OSError, _Unreadable, UnicodeDecodeError):
            return None
        return text if _identity(path) == identity else None

    return reread


def _read_stdin(budget: _Budget) -> bytes | str:
    stream = getattr(sys.stdin, "buffer", sys.stdin)  # a text stream when a test or a caller set one
    return budget.take(stream.read(budget.left + 1))


def _read_file(path: str, budget: _Budget) -> bytes:
    """The bytes of a regular file or a named pipe, at most what ``budget`` has left."""
    # Non-blocking, so that opening a pipe nobody writes to returns at once (it would wait forever).
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if stat.S_ISFIFO(info.st_mode):
            first = _first_from_pipe(fd)
        elif stat.S_ISREG(info.st_mode):
            first = b""
        else:
            raise _NotAFile()
        os.set_blocking(fd, True)
        # A regular file in one read of its size (and one more to see its end: it may have grown).
        chunks = [budget.take(first)] if first else []
        while chunk := os.read(fd, min(max(info.st_size + 1, _CHUNK), budget.left + 1)):
            chunks.append(budget.take(chunk))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _first_from_pipe(fd: int) -> bytes:
    """Wait for a writer of a named pipe: a read gives EAGAIN while one holds it open, and nothing
    (end of file) while none does."""
    deadline = time.monotonic() + PIPE_WAIT
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return b""  # a writer is there: read on, blocking, until it closes the pipe
        if chunk:
            return chunk
        if time.monotonic() >= deadline:
            raise _Unreadable(f"a pipe no writer opened within {PIPE_WAIT:g} s")
        time.sleep(0.05)


def _decoded(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    # A byte order mark is allowed at the start (YAML and kubectl allow it); the text is UTF-8.
    return data[len(codecs.BOM_UTF8) :].decode("utf-8") if data.startswith(codecs.BOM_UTF8) else data.decode("utf-8")


def _not_utf8(name: str, err: UnicodeDecodeError) -> Problem:
    data = err.object
    line_start = data.rfind(b"\n", 0, err.start) + 1
    column = len(data[line_start : err.start].decode("utf-8", "replace")) + 1
    line = data.count(b"\n", 0, err.start) + 1
    return Problem(f"invalid UTF-8: byte 0x{data[err.start]:02x} (manifests are UTF-8 text)", file=name, line=line, column=column)


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


def read_config(path: str, what: str = "config") -> Source:
    """The text of a --config file (``what``: another kind of settings file, named so in its
    problems). Raises InvalidInput when it cannot be read."""
    name = show_file(path)
    try:
        return Source(name, _decoded(_read_file(path, _Budget())), False)
    except OSError as err:
        problem = Problem(f"cannot read {what}: {err.strerror or err}", file=name)
    except _Unreadable as err:
        problem = Problem(f"cannot read {what}: {err}", file=name)
    except UnicodeDecodeError as err:
        problem = _not_utf8(name, err)
    raise InvalidInput([problem])


def hostname() -> str:
    """This machine's node name as kubelet and kube-proxy derive it: the hostname, lower-cased."""
    return socket.gethostname().lower()
