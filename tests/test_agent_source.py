"""The manifest directory source (svcctl.agent.source.DirectorySource), on real files and inotify."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from svcctl.agent.source import DirectorySource, Event, Gone, Put, Synced


async def _collect(source: DirectorySource, actions, settle: float = 0.3) -> list[Event]:
    """The events while ``actions`` (a function changing files) runs after Synced."""
    events: list[Event] = []

    async def read() -> None:
        async for event in source.events():
            events.append(event)
            if isinstance(event, Synced):
                await asyncio.sleep(0.1)  # the watcher is running by now
                actions()

    task = asyncio.create_task(read())
    await asyncio.sleep(settle + 0.2)
    source.stop()
    await asyncio.wait_for(task, 2)
    return events


def collect(source: DirectorySource, actions=lambda: None) -> list[Event]:
    return asyncio.run(_collect(source, actions))


def names(events: list[Event]) -> list[tuple[str, str]]:
    return [(type(e).__name__, Path(e.origin).name if not isinstance(e, Synced) else "") for e in events]


def test_lists_manifests_then_synced_and_skips_other_files(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.json", "c.yml", "notes.txt", ".a.yaml.swp", "a.yaml~", ".#a.yaml", "#a.yaml#", "4913"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "sub.yaml").mkdir()
    events = collect(DirectorySource(tmp_path))
    assert names(events) == [("Put", "a.json"), ("Put", "b.yaml"), ("Put", "c.yml"), ("Synced", "")]
    assert events[0].is_json and not events[1].is_json


def test_follows_writes_renames_and_removals(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("one")
    (tmp_path / "gone.yaml").write_text("x")

    def actions() -> None:
        (tmp_path / "a.yaml").write_text("two")
        (tmp_path / ".new.yaml.tmp").write_text("three")  # an atomic save: temporary name, then rename
        os.rename(tmp_path / ".new.yaml.tmp", tmp_path / "new.yaml")
        (tmp_path / "gone.yaml").unlink()
        (tmp_path / "a.yaml~").write_text("backup")  # an editor's backup: nothing

    events = collect(DirectorySource(tmp_path), actions)
    after = events[events.index(Synced()) + 1 :]
    assert sorted((type(e).__name__, Path(e.origin).name, getattr(e, "text", "")) for e in after) == [
        ("Gone", "gone.yaml", ""), ("Put", "a.yaml", "two"), ("Put", "new.yaml", "three"),
    ]


def test_the_same_content_again_is_no_event_and_a_rescan_finds_what_was_missed(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("one")
    source = DirectorySource(tmp_path)
    collect(source)
    (tmp_path / "a.yaml").write_text("one")  # written again, same text
    (tmp_path / "b.yaml").write_text("new")  # while nothing watched
    assert source.look_again() == [Put(str(tmp_path / "b.yaml"), "new", False)]
    (tmp_path / "b.yaml").unlink()
    assert source.look_again() == [Gone(str(tmp_path / "b.yaml"))]


def test_a_directory_that_is_gone_reports_nothing_gone(tmp_path: Path) -> None:
    directory = tmp_path / "manifests"
    directory.mkdir()
    (directory / "a.yaml").write_text("one")
    source = DirectorySource(directory)
    assert len(source.look_again()) == 1
    (directory / "a.yaml").unlink()
    directory.rmdir()
    assert source.look_again() == []  # unmounted or being replaced: what was read stays
    directory.mkdir()
    assert source.look_again() == [Gone(str(directory / "a.yaml"))]  # there, and empty: gone


def test_a_file_held_open_for_writing_is_read_once_it_is_closed(tmp_path: Path) -> None:
    """A write in place (a shell's `kubectl get ... > file`) truncates the file first: what is
    there before the writer closes it may parse as a file with fewer Services. Only the
    closed file is reported, with all it holds."""
    (tmp_path / "a.yaml").write_text("first\nsecond\n")
    events: list[Event] = []

    async def run() -> None:
        source = DirectorySource(tmp_path)

        async def read() -> None:
            async for event in source.events():
                events.append(event)

        task = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        with open(tmp_path / "a.yaml", "w") as writer:  # truncated: empty, then half written
            await asyncio.sleep(0.3)
            writer.write("first\n")
            writer.flush()
            await asyncio.sleep(0.3)
            writer.write("second\nthird\n")
        await asyncio.sleep(0.3)
        source.stop()
        await asyncio.wait_for(task, 2)

    asyncio.run(run())
    assert [(type(e).__name__, getattr(e, "text", "")) for e in events] == [
        ("Put", "first\nsecond\n"), ("Synced", ""), ("Put", "first\nsecond\nthird\n"),
    ]


def test_the_first_sync_waits_for_a_file_being_written(tmp_path: Path) -> None:
    writer = open(tmp_path / "a.yaml", "w")
    writer.write("half")
    writer.flush()

    def close_soon() -> None:
        writer.write(" and the rest")
        writer.close()

    async def run() -> list[Event]:
        asyncio.get_running_loop().call_later(0.3, close_soon)
        source = DirectorySource(tmp_path)
        found: list[Event] = []
        async for event in source.events():
            found.append(event)
            if isinstance(event, Synced):
                source.stop()
        return found

    events = asyncio.run(asyncio.wait_for(run(), 3))
    assert [(type(e).__name__, getattr(e, "text", "")) for e in events] == [("Put", "half and the rest"), ("Synced", "")]


def test_a_file_being_written_is_not_kept_waiting_by_other_files_changing(tmp_path: Path) -> None:
    """Batches of events of other files keep coming (one every few ms, so the watcher never
    falls quiet); the file held open is still looked at with each, and read soon after its
    writer closes it, not at the next rescan."""
    (tmp_path / "a.yaml").write_text("old")
    (tmp_path / "busy.yaml").write_text("0")
    seen: list[tuple[float, str]] = []

    async def run() -> float:
        source = DirectorySource(tmp_path)

        async def read() -> None:
            async for event in source.events():
                if isinstance(event, Put) and event.origin.endswith("a.yaml"):
                    seen.append((time.monotonic(), event.text))

        task = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        writer = open(tmp_path / "a.yaml", "w")
        writer.write("new")
        writer.flush()  # the last write: closing it gives no event
        closed = 0.0
        for i in range(300):  # another file rewritten every ~5 ms throughout
            (tmp_path / "busy.yaml").write_text(str(i))
            await asyncio.sleep(0.005)
            if i == 20:
                writer.close()
                closed = time.monotonic()
        source.stop()
        await asyncio.wait_for(task, 2)
        return closed

    closed = asyncio.run(run())
    assert [text for _, text in seen] == ["old", "new"]
    assert seen[1][0] - closed < 0.5
