"""The one place that talks to the kernel: libnftables, through Debian's ``nftables`` binding.

A libnftables context talks to the network namespace it was created in (kernel-notes.md), so a
ruleset can be proven in a throwaway namespace: a forked child unshares a new one, loads the
ruleset there and reports back; the kernel, not a parser, decides whether it is acceptable.
libnftables' own dry-run is not such proof: it once accepted a batch the commit then refused.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import re
import tempfile
from typing import Any, Callable, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000


class KernelError(Exception):
    """The kernel cannot be used (missing binding, privileges or support): one sentence. Exit 3."""


class Refused(KernelError):
    """The kernel (or nft) refused a transaction; nothing changed. ``script`` is what was sent."""

    def __init__(self, message: str, script: str):
        self.script = script
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # crosses the throwaway-namespace pipe
        return (Refused, (str(self), self.script))


def _binding() -> Any:
    try:
        import nftables  # Debian's python3-nftables; the PyPI copies lack dry-run
    except ImportError:
        raise KernelError(
            "the nftables Python binding is missing: install Debian's python3-nftables and run svcctl "
            "from a virtual environment made with --system-site-packages (see README)"
        ) from None
    return nftables


def _explain(error: str) -> str | None:
    """One sentence for the failures that are about the machine, not the ruleset."""
    if "Operation not permitted" in error:
        return "svcctl needs CAP_NET_ADMIN to read and change nftables rules: run it as root"
    if "Protocol not supported" in error or "Address family not supported" in error:
        return "this kernel lacks nf_tables support (load the nf_tables module)"
    return None


class Nft:
    """A libnftables context in the current network namespace."""

    def __init__(self) -> None:
        try:
            self._ctx = _binding().Nftables()
        except OSError as err:  # libnftables.so.1 missing
            raise KernelError(f"libnftables cannot be loaded ({err}): install Debian's nftables package") from None

    def run(self, script: str, dry_run: bool = False) -> None:
        """Send ``script`` as one transaction: all of it is committed, or none.
        Raises Refused with nft's message (positions point into the script) if it is refused,
        KernelError if the machine is the problem. With ``dry_run`` the kernel checks the batch
        without committing it."""
        with tempfile.NamedTemporaryFile("w", prefix="svcctl-", suffix=".nft", encoding="utf-8") as f:
            # From a file, nft's errors say file:line:column (kernel-notes.md).
            f.write(script)
            f.flush()
            self._ctx.set_dry_run(dry_run)
            try:
                rc, _, error = self._ctx.cmd_from_file(f.name)
            finally:
                self._ctx.set_dry_run(False)
        if rc != 0:
            reason = _explain(error)
            if reason:
                raise KernelError(reason)
            raise Refused(error.strip(), script)

    def query(self, command: str, terse: bool = False) -> list[dict[str, Any]]:
        """A ``list`` command's JSON objects (metainfo left out). [] when the object is absent.
        ``terse`` leaves out set elements."""
        self._ctx.set_json_output(True)
        self._ctx.set_terse_output(terse)
        try:
            output = self.listing(command)
        finally:
            self._ctx.set_json_output(False)
            self._ctx.set_terse_output(False)
        return [o for o in json.loads(output or '{"nftables": []}')["nftables"] if "metainfo" not in o]

    def listing(self, command: str) -> str:
        """A ``list`` command's output; "" when the object is absent. Raises KernelError."""
        rc, output, error = self._ctx.cmd(command)
        if rc != 0:
            reason = _explain(error)
            if reason:
                raise KernelError(reason)
            if "No such file or directory" in error:
                return ""
            raise KernelError(f"nft {command}: {error.strip()}")
        return output


FRAME_PREFIX = "frame-"  # every table svcctl makes holds an empty set frame-<hash> (see render.frame_name)


def owned_tables(nft: Nft) -> set[tuple[str, str]]:
    """(family, name) of the tables svcctl made: those holding a ``frame-*`` marker set. A table
    of the same name without one belongs to someone else and is never changed or deleted."""
    return {
        (o["set"]["family"], o["set"]["table"])
        for o in nft.query("list sets", terse=True)
        if o["set"]["name"].startswith(FRAME_PREFIX)
    }


def present_tables(nft: Nft) -> set[tuple[str, str]]:
    """(family, name) of every table that has a chain or a set (svcctl's always have both).
    Not ``list tables``: nft 1.0.6 fills its whole cache for it, rules included (1.5 s for a
    10,000-Service table), while terse chain and set listings take milliseconds."""
    found = set()
    for what in ("chains", "sets", "maps"):
        for obj in nft.query(f"list {what}", terse=True):
            (body,) = obj.values()
            found.add((body["family"], body["table"]))
    return found


def in_throwaway_netns(work: Callable[[Nft], T]) -> T:
    """Run ``work`` with an Nft context in a new, empty network namespace that disappears
    afterwards. Exceptions raised by ``work`` are raised here."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise KernelError(
                    "creating a network namespace needs CAP_SYS_ADMIN: run svcctl as root"
                    if errno == 1 else f"cannot create a network namespace: {os.strerror(errno)}"
                )
            outcome: tuple[bool, Any] = (True, work(Nft()))
        except BaseException as err:  # noqa: BLE001 - handed to the parent
            outcome = (False, err)
        try:
            data = pickle.dumps(outcome)
        except Exception as err:  # noqa: BLE001
            data = pickle.dumps((False, KernelError(f"throwaway namespace: {err}")))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    if not data:
        raise KernelError("the throwaway network namespace check died without an answer")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value


_OWNER = re.compile(r"\b(?:svc|ext|local|aff)-[A-Z2-7]{8}-([a-z0-9.-]+)/([a-z0-9.-]+)/(tcp|udp|sctp)/([a-z0-9-]+)")
_POSITION = re.compile(r":(\d+):\d+(?:-\d+)?: ")


def culprit(refused: Refused) -> str | None:
    """Which Service port the rule nft refused belongs to, from the line its error points at."""
    match = _POSITION.search(str(refused))
    if not match:
        return None
    lines = refused.script.splitlines()
    line = int(match[1]) - 1
    for text in reversed(lines[max(0, line - 2000) : line + 1]):  # the line itself, else its chain's header
        owner = _OWNER.search(text)
        if owner:
            ns, name, proto, port = owner.groups()
            return f"Service {ns}/{name} port {port}/{proto}"
        if text.startswith(("table ", "add element", "delete ")) or text.strip().startswith("chain "):
            break
    return None
