"""Where ``svcctl run`` learns what the cluster holds: a source, a stream of changes.

A source yields events, in order:

- ``Put(origin, text, is_json)``: what ``origin`` holds is now ``text`` (added or changed).
  An origin is the unit a source reports: for a manifest directory one file (one or many
  objects); for the Kubernetes API (the next source) one object, as JSON. ``error`` instead of
  text: the origin exists but cannot be read now.
- ``Gone(origin)``: ``origin`` is gone, and every object it held.
- ``Synced()``: every origin that existed when the source started has been reported. The agent
  makes its first sync after it, so that it never removes the rules of Services it has not read
  yet (an informer's HasSynced).

Only the latest event of an origin matters: the agent may skip older ones it has not handled
yet. A source never fails for bad content; it may report the same content twice.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, NamedTuple, Protocol, Union

import watchfiles

from ..problems import Problem
from ..sources import is_manifest_name, read_manifest_file


class Put(NamedTuple):
    origin: str
    text: str
    is_json: bool
    error: str = ""  # the origin cannot be read: why (text is then "")


class Gone(NamedTuple):
    origin: str


class Synced(NamedTuple):
    pass


Event = Union[Put, Gone, Synced]


class Source(Protocol):
    def events(self) -> AsyncIterator[Event]:
        """The changes, forever (until the task reading them is cancelled or ``stop`` is called)."""

    def stop(self) -> None:
        """End ``events`` soon (within ~ one step of the watcher)."""


class _Seen(NamedTuple):
    """A file when last read: its stat (modification time, size, inode) and its text."""

    stat: tuple[int, int, int]
    text: str


# watchfiles hands over a batch once no event came for a step, or this long after its first one
# (under constant churn, changes still go out every 50 ms).
_BATCH_MS = 50
# How long a file held open for writing waits to be read (``kubectl get`` of a big cluster into
# it takes seconds); a writer that keeps it open longer does not hold its changes back forever.
WRITER_WAIT = 30.0


@dataclass
class DirectorySource:
    """The manifest files of one directory (``*.yaml``, ``*.yml``, ``*.json``, not hidden; not
    its subdirectories), watched with inotify through watchfiles.

    - Editors' temporary files are not manifests (svcctl.sources.is_manifest_name); a rename
      onto a manifest name (how editors and ``kubectl``-like tools save atomically) is a change
      of that name; a file that does not parse yet (a partial write) is reported as it is: the
      agent keeps its last good content until the next write completes it.
    - Events are hints: on each one the file is read again, and reported if its text changed
      (a burst of writes in one batch costs one read). A file some process still holds open for
      writing (a shell's ``kubectl get ... > file``, a write in place) is not read until it is
      closed, for up to WRITER_WAIT seconds: a half-written file may parse, as a file with half
      the Services. The first sync waits for such files too.
    - Every ``rescan`` seconds (and whenever a name kubelet uses for atomic ConfigMap updates,
      ``..data``, changes) every file is looked at again: nothing missed stays missed.

    ``step_ms``: watchfiles gathers the events of a burst until none came for about one step, so
    a change is seen ~2 steps after it happened (measured in bench/agent.py).
    """

    path: Path
    rescan: float = 30.0
    step_ms: int = 5

    def __post_init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._stop = asyncio.Event()
        self._writing: dict[str, float] = {}  # name -> since when it is held open for writing
        self._leases = _leases_tell(self.path)

    def stop(self) -> None:
        self._stop.set()

    async def events(self) -> AsyncIterator[Event]:
        watch = watchfiles.awatch(
            self.path,
            watch_filter=None,  # every name: the filtering is is_manifest_name's, and ..data's
            debounce=_BATCH_MS,
            step=self.step_ms,
            stop_event=self._stop,
            rust_timeout=int(self.rescan * 1000),
            yield_on_timeout=True,  # an empty batch when nothing happened: time to rescan
            recursive=False,
        )
        batches: asyncio.Queue[set[tuple[watchfiles.Change, str]] | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for changes in watch:
                    batches.put_nowait(changes)
            finally:
                batches.put_nowait(None)  # stopped (or failed)

        # awatch sets up inotify in the first step of its task: before the listing, so that
        # nothing written meanwhile is missed.
        pumping = asyncio.create_task(pump())
        await asyncio.sleep(0)
        try:
            for event in self.look_again():
                yield event
            while self._writing and not self._stop.is_set():
                await asyncio.sleep(_BATCH_MS / 1000)
                for name in sorted(self._writing):
                    found = self._look(name, read=True)
                    if found is not None:
                        yield found
            yield Synced()
            last_scan = time.monotonic()
            while True:
                try:  # no event comes when a writer closes: files held open are looked at each batch
                    changes = await asyncio.wait_for(batches.get(), _BATCH_MS / 1000 if self._writing else None)
                except asyncio.TimeoutError:
                    changes = {(watchfiles.Change.modified, str(self.path / n)) for n in self._writing}
                if changes is None:
                    await pumping  # raises the watcher's error, if it failed
                    return
                if not changes or any(Path(p).name.startswith("..") for _, p in changes) or time.monotonic() - last_scan >= self.rescan:
                    last_scan = time.monotonic()
                    for event in self.look_again():
                        yield event
                    continue
                # Files held open for writing are looked at with every batch: events of other
                # files must not keep them waiting (no event comes when the writer closes).
                for name in sorted({Path(p).name for _, p in changes} | set(self._writing)):
                    found = self._look(name, read=True)
                    if found is not None:
                        yield found
        finally:
            pumping.cancel()

    def look_again(self) -> list[Event]:
        """Every manifest that changed, appeared or went since last seen."""
        try:
            names = {n for n in os.listdir(self.path) if is_manifest_name(n)}
        except OSError:
            # The directory is gone or unreadable (unmounted, being replaced): nothing is known,
            # so nothing is reported gone; the next look finds it again. (An empty directory
            # is another matter: every Service in it is gone.)
            return []
        events = []
        for name in sorted(names | set(self._seen)):
            event = self._look(name, read=False)
            if event is not None:
                events.append(event)
        return events

    def _look(self, name: str, read: bool) -> Event | None:
        """An event if the file changed since last seen. ``read``: read it even if it looks the
        same (the modification time has the kernel's timer granularity: two writes of the same
        size within one tick look alike); else only when its stat differs."""
        if not is_manifest_name(name):
            return None
        path = self.path / name
        origin = str(path)
        try:
            st = path.stat()
        except OSError:
            st = None
        if st is None or not path.is_file():
            self._writing.pop(name, None)
            return Gone(origin) if self._seen.pop(name, None) is not None else None
        if self._leases and _being_written(path) and time.monotonic() - self._writing.setdefault(name, time.monotonic()) < WRITER_WAIT:
            return None
        self._writing.pop(name, None)
        stat = (st.st_mtime_ns, st.st_size, st.st_ino)
        before = self._seen.get(name)
        if before is not None and before.stat == stat and not read:
            return None
        found = read_manifest_file(origin)
        if isinstance(found, Problem):
            self._seen[name] = _Seen(stat, "")
            return Put(origin, "", False, found.message)
        self._seen[name] = _Seen(stat, found.text)
        if before is not None and before.text == found.text:
            return None
        return Put(origin, found.text, found.is_json)


# File systems whose lease answers say nothing of local writers: NFSv4 and CIFS refuse a lease
# with EAGAIN when they hold no delegation or oplock, FUSE and the like pass it on or refuse it.
_NO_LEASES = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs", "virtiofs", "fuse")


def _leases_tell(directory: Path) -> bool:
    """Whether a lease on the directory's files tells if a local process writes them: not on a
    network or FUSE file system (by /proc/self/mountinfo, the mount that holds the directory)."""
    try:
        where = os.path.realpath(directory)
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            mounts = [line.split(" - ", 1) for line in f]
    except OSError:
        return False
    best, kind = "", ""
    for fields, after in (m for m in mounts if len(m) == 2):
        point = fields.split()[4].replace("\\040", " ")
        if (where == point or where.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, after.split()[0]
    return kind.split(".")[0] not in _NO_LEASES


def _being_written(path: Path) -> bool:
    """Whether some process holds the file open for writing: the kernel grants a read lease
    only when none does (fcntl(2) F_SETLEASE; root has CAP_LEASE). The lease is given back at
    once; a writer opening the file meanwhile breaks it with a signal, SIGURG here, which is
    ignored by default (SIGIO's default would end the agent). Unknown (no lease on this file
    system, not allowed): False, and the file is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    except OSError as err:
        return err.errno == errno.EAGAIN
    finally:
        os.close(fd)
    return False
