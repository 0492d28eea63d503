"""The one place that talks to nftables: libnftables, through Debian's ``nftables`` binding.

A libnftables context talks to the network namespace it was created in, so a ruleset can be
proven in a throwaway namespace (svcctl.kernel.in_throwaway_netns). libnftables' own dry-run is
no such proof: it once accepted a batch the commit then refused (docs/kernel-notes.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from ..kernel import KernelError
from .refusal import NftRefused


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
        # nft's errors carry file:line:column only for a file (a buffer gets none): an anonymous
        # in-memory file, which leaves nothing behind whatever kills the process.
        fd = os.memfd_create("svcctl.nft", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "w", encoding="utf-8") as f:
                f.write(script)
            self._ctx.set_dry_run(dry_run)
            try:
                rc, _, error = self._ctx.cmd_from_file(f"/proc/self/fd/{fd}")
            finally:
                self._ctx.set_dry_run(False)
        finally:
            os.close(fd)
        if rc != 0:
            reason = _explain(error)
            if reason:
                raise KernelError(reason)
            raise NftRefused(error.strip(), script)

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


class Listing:
    """``nft list table`` of some tables, read by ``nft`` processes started at once: at 10,000
    Services a listing takes seconds (nft rebuilds its cache of every rule) and several hundred
    MB, so ``svcctl diff`` reads it in other processes while it compiles the plan. Each writes
    into an in-memory file, never blocking on a full pipe."""

    def __init__(self, scopes: list[str]) -> None:
        tool = shutil.which("nft")
        if tool is None:
            raise KernelError("the nft command is missing: install Debian's nftables package")
        self._procs = []
        for scope in scopes:
            out, err = os.memfd_create("nft-list", os.MFD_CLOEXEC), os.memfd_create("nft-err", os.MFD_CLOEXEC)
            proc = subprocess.Popen([tool, "list", "table", *scope.split()], stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            self._procs.append((scope, proc, out, err))

    def texts(self) -> dict[str, str]:
        """Each table's listing, "" for a table that does not exist. Raises KernelError."""
        found = {}
        for scope, proc, out, err in self._procs:
            proc.wait()
            output, error = (_drain(fd) for fd in (out, err))
            if proc.returncode != 0:
                reason = _explain(error)
                if reason:
                    raise KernelError(reason)
                if "No such file or directory" not in error:
                    raise KernelError(f"nft list table {scope}: {error.strip()}")
                output = ""
            found[scope] = output
        return found


def _drain(fd: int) -> str:
    with os.fdopen(fd, "r", encoding="utf-8") as f:
        f.seek(0)
        return f.read()
