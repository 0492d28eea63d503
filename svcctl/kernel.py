"""What every back end needs at the kernel's edge: its errors, the lock that serializes applies,
and throwaway network namespaces, where a ruleset is proven by the kernel itself without
touching the machine's own rules."""

from __future__ import annotations

import ctypes
import fcntl
import os
import pickle
import subprocess
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
CAP_NET_ADMIN = 12
LOCK_DIR = "/run/lock"


class KernelError(Exception):
    """The kernel cannot be used (missing binding, privileges or support): one sentence. Exit 3."""


class Refused(KernelError):
    """The kernel refused a transaction; nothing changed. ``script`` is what was sent."""

    def __init__(self, message: str, script: str):
        self.script = script
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # crosses the throwaway-namespace pipe
        return (type(self), (str(self), self.script))

    def describe(self) -> str:
        """What to tell the user (back ends say more: the line refused, its Service)."""
        first = str(self).splitlines()[0] if str(self) else "no reason given"
        return f"the kernel refused the rules, nothing was changed: {first}"


def has_net_admin() -> bool:
    """Whether this process holds CAP_NET_ADMIN (in its effective set): needed to read and change
    the rules of its network namespace."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


@contextmanager
def locked(table: str) -> Iterator[None]:
    """Hold the lock of one table name: a second apply waits until the first is done."""
    directory = LOCK_DIR if os.path.isdir(LOCK_DIR) else "/tmp"
    path = os.path.join(directory, f"svcctl-{table}.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as err:
        raise KernelError(f"cannot open the lock file {path}: {err.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def in_throwaway_netns(work: Callable[[], T]) -> T:
    """Run ``work`` in a new, empty network namespace that disappears afterwards: a forked child
    unshares one, runs ``work`` there and hands back its result or exception (pickled)."""
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
            outcome: tuple[bool, Any] = (True, work())
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


class Started:
    """A program started now and read later: its output goes to in-memory files, so it never
    blocks on a full pipe however much it prints (listings of 10,000 Services run to tens of MB)
    while svcctl does other work."""

    def __init__(self, argv: list[str]) -> None:
        self._out, self._err = os.memfd_create("out", os.MFD_CLOEXEC), os.memfd_create("err", os.MFD_CLOEXEC)
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err)

    def wait(self) -> tuple[int, str, str]:
        """(exit status, standard output, standard error)."""
        self._proc.wait()
        return self._proc.returncode, _drain(self._out), _drain(self._err)


def _drain(fd: int) -> str:
    with os.fdopen(fd, "r", encoding="utf-8") as f:
        f.seek(0)
        return f.read()
