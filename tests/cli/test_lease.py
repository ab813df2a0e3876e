"""The drain lease helper (``admin.DrainLease``) over the plugin's SQLite lease protocol."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from stash2plex_backends.sqlite import hookpath
from stash2plex_core.clocks import ManualClock
from stash2plex_core.services.admin import DrainLease
from stash2plex_core.services.admin import DrainLeaseHeldError
from stash2plex_integrations.cli.appctx import scrub
from stash2plex_integrations.cli.lease import SQLiteDrainLeases


class CountingStore(SQLiteDrainLeases):
    """The real SQLite store, counting renewals."""

    renewals = 0

    def renew(self, owner: str, seconds: float) -> bool:
        self.renewals += 1
        return super().renew(owner, seconds)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "stash2plex.db")


def test_one_holder_at_a_time_and_the_other_is_told_who(db: str) -> None:
    clock = ManualClock()
    first = DrainLease(SQLiteDrainLeases(db), "worker:a:1", clock)
    second = DrainLease(SQLiteDrainLeases(db), "sync:a:2", clock)
    assert first.acquire(wait=False)
    with pytest.raises(DrainLeaseHeldError, match="held by worker:a:1") as raised:
        second.acquire(wait=False)
    assert raised.value.holder == "worker:a:1"
    assert not hookpath.reserve_drain(db, "hook:3", 120)  # a hook sees it held
    first.release()
    assert hookpath.lease_holder(db) is None
    assert second.acquire(wait=False)


def test_a_hook_reservation_is_taken_over_but_a_task_is_waited_for(db: str) -> None:
    assert hookpath.reserve_drain(db, "hook:10", 120)
    lease = DrainLease(SQLiteDrainLeases(db), "worker:a:1", ManualClock())
    assert lease.take()
    assert hookpath.lease_holder(db) == "worker:a:1"
    assert not hookpath.take_drain(db, "task:11", 300)  # the task the hook started finds it held
    lease.release()

    assert hookpath.take_drain(db, "task:11", 300)
    told: list[str | None] = []
    stop = threading.Event()
    stop.set()  # a stop already requested ends the wait at once
    assert lease.acquire(wait=True, stop=stop, poll=0.01, on_wait=told.append) is False
    assert told == ["task:11"]


def test_renewal_every_third_of_the_lease_and_loss_is_noticed(db: str) -> None:
    clock = ManualClock()
    store = CountingStore(db)
    lease = DrainLease(store, "worker:a:1", clock, seconds=60)
    assert lease.take()
    clock.advance(19)
    assert lease.renew_if_due()
    assert store.renewals == 0  # not yet due
    clock.advance(2)
    assert lease.renew_if_due()
    assert store.renewals == 1

    hookpath.release_lease(db, "worker:a:1")  # as if it expired and another process took it
    assert hookpath.take_drain(db, "task:9", 60)
    clock.advance(21)
    assert lease.renew_if_due() is False
    assert lease.held is False
    lease.release()
    assert hookpath.lease_holder(db) == "task:9"  # releasing a lost lease leaves the new holder alone


def test_owner_must_not_pose_as_a_hook_reservation(db: str) -> None:
    with pytest.raises(ValueError, match="hook"):
        DrainLease(SQLiteDrainLeases(db), "hook:1", ManualClock())


def test_scrub_removes_credentials_from_messages() -> None:
    text = "GET http://plex:32400/library?X-Plex-Token=abc123def&x=1 failed; ApiKey: k-9876 refused"
    cleaned = scrub(text)
    assert "abc123def" not in cleaned
    assert "k-9876" not in cleaned
    assert "X-Plex-Token=***" in cleaned
