"""When the agent syncs (svcctl.agent.reconcile.Schedule), driven by a fake clock."""

from __future__ import annotations

from svcctl.agent.reconcile import Kind, Schedule


def started(min_period: float = 1.0, sync_period: float = 30.0, at: float = 100.0) -> Schedule:
    schedule = Schedule(min_period, sync_period)
    schedule.start(at)
    return schedule


def sync(schedule: Schedule, at: float, ok: bool = True) -> tuple[Kind, float | None]:
    """Run the sync that is due at ``at`` (it must be): its kind and the backoff if it failed."""
    when, kind = schedule.due(at)
    assert when <= at
    schedule.begin(at)
    return kind, schedule.end(at, kind, ok)


def test_first_sync_is_at_once_and_reads_the_kernel() -> None:
    schedule = started()
    assert schedule.due(100.0) == (100.0, Kind.VERIFY)
    assert sync(schedule, 100.0) == (Kind.VERIFY, None)
    assert schedule.due(100.0) == (130.0, Kind.VERIFY)  # then every sync period


def test_changes_are_synced_at_most_once_per_min_sync_period() -> None:
    schedule = started(min_period=1.0)
    sync(schedule, 100.0)
    schedule.change()
    assert schedule.due(100.2) == (101.0, Kind.UPDATE)  # 1 s after the last sync started
    schedule.change()  # more changes meanwhile: the same sync takes them
    assert schedule.due(100.9) == (101.0, Kind.UPDATE)
    assert sync(schedule, 101.0) == (Kind.UPDATE, None)
    assert schedule.due(101.0) == (130.0, Kind.VERIFY)  # nothing waiting: only the resync
    schedule.change()
    assert schedule.due(105.0) == (102.0, Kind.UPDATE)  # long after the last one: at once


def test_min_sync_period_zero_syncs_every_change_at_once() -> None:
    schedule = started(min_period=0.0)
    sync(schedule, 100.0)
    schedule.change()
    assert schedule.due(100.001) == (100.0, Kind.UPDATE)


def test_a_change_near_the_resync_is_taken_by_the_resync() -> None:
    schedule = started(min_period=1.0)
    sync(schedule, 100.0)
    schedule.change()
    assert schedule.due(130.5) == (101.0, Kind.VERIFY)  # the resync is due too: one verify does both


def test_a_failed_sync_is_retried_with_a_doubling_backoff_up_to_the_sync_period() -> None:
    schedule = started(min_period=0.0, sync_period=5.0)
    backoffs = []
    at = 100.0
    for _ in range(5):
        kind, backoff = sync(schedule, at, ok=False)
        assert backoff is not None
        backoffs.append(backoff)
        schedule.change()  # changes do not cut the backoff short
        at, kind = schedule.due(at)
        assert kind is Kind.VERIFY  # a retry reads the kernel: the failed commit left it unknown
    assert backoffs == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert sync(schedule, at) == (Kind.VERIFY, None)  # it also takes what changed meanwhile
    assert schedule.due(at) == (at + 5.0, Kind.VERIFY)


def test_the_rules_are_reloaded_whole_every_hour() -> None:
    schedule = started(sync_period=30.0)
    at = 100.0
    kinds = []
    while at < 100.0 + 3700:
        when, kind = schedule.due(at)
        at = max(when, at)
        kinds.append(sync(schedule, at)[0])
    assert kinds.count(Kind.RELOAD) == 1 and kinds[-1] is Kind.VERIFY


def test_sighup_makes_a_reload_due_at_once() -> None:
    schedule = started()
    sync(schedule, 100.0)
    schedule.reload_now()
    when, kind = schedule.due(105.0)
    assert when <= 105.0 and kind is Kind.RELOAD
    assert sync(schedule, 105.0) == (Kind.RELOAD, None)
    assert schedule.due(106.0) == (135.0, Kind.VERIFY)  # and then as before


def test_a_sighup_before_the_first_sync_makes_it_a_reload() -> None:
    schedule = Schedule(1.0, 30.0)
    schedule.reload_now()
    schedule.start(100.0)
    when, kind = schedule.due(100.0)
    assert when <= 100.0 and kind is Kind.RELOAD


def test_a_sighup_during_a_backoff_reloads_after_the_retry() -> None:
    schedule = started()
    assert sync(schedule, 100.0, ok=False)[1] is not None
    schedule.reload_now()
    when, kind = schedule.due(100.0)
    assert kind is Kind.VERIFY and when > 100.0  # the retry first
    assert sync(schedule, when) == (Kind.VERIFY, None)
    assert sync(schedule, when) == (Kind.RELOAD, None)
