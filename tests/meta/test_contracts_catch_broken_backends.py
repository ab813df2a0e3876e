"""The contract suites are only worth something if a broken backend fails them.

Each case runs a throwaway pytest session (``pytester``) over a memory backend with one
behaviour removed, and checks that the named contract test fails.
"""

from __future__ import annotations

import textwrap

import pytest


SABOTAGE = {
    "no-coalescing": (
        "queue",
        """
        def _enqueue(self, scene_id, reason, now, due):
            from stash2plex_core.models.jobs import SyncJob
            job = SyncJob(id=str(next(self._ids)), scene_id=scene_id, reason=reason, enqueued_at=now, next_attempt_at=due)
            self._jobs[job.id] = job
            return job
        """,
        "test_enqueue_coalesces_per_scene_keeping_the_earliest_time",
    ),
    "complete-does-nothing": ("queue", "def _complete(self, job, now):\n    pass\n", "test_complete_removes_the_job"),
    "leases-never-expire": (
        "queue",
        """
        def _claim(self, owner, token, now, expires):
            import datetime as dt
            return super()._claim(owner, token, now, expires + dt.timedelta(days=3650))
        """,
        "test_expired_lease_is_claimable_and_old_holder_loses",
    ),
    "release-burns-attempt": (
        "queue",
        """
        def _reschedule(self, job, now, when, error, *, count_attempt):
            return super()._reschedule(job, now, when, error, count_attempt=True)
        """,
        "test_release_does_not_burn_the_attempt",
    ),
    "state-returns-live-objects": (
        "state",
        """
        def _get(self, namespace, key):
            return self._data.get(namespace, {}).get(key)
        """,
        "test_documents_are_copies",
    ),
    "get-many-reports-missing-keys": (
        "state",
        """
        def _get_many(self, namespace, keys):
            return {key: self._get(namespace, key) or {} for key in keys}
        """,
        "test_get_many_returns_what_exists_as_copies",
    ),
    "put-all-drops-a-namespace": (
        "state",
        """
        def _put_all(self, batch):
            for namespace, documents in list(batch.items())[:1]:
                self._put_many(namespace, documents)
        """,
        "test_put_all_writes_every_namespace",
    ),
    "plex-ignores-removals": (
        "plex",
        """
        def _apply(self, rating_key, edit):
            import attrs
            from stash2plex_core.models.plex import TagEdit
            tags = {f: TagEdit(values=tuple(self.get_item(rating_key).metadata.genres) + e.values) if f == "genre" else e
                    for f, e in edit.tags.items()}
            super()._apply(rating_key, attrs.evolve(edit, tags=tags))
        """,
        "test_apply_tags_adds_and_removes",
    ),
    "stash-not-exact": (
        "stash",
        """
        def find_by_path(self, path):
            return self._find_by_path(path)
        """,
        "test_find_by_path_is_exact_despite_wildcards_and_case",
    ),
}

TEMPLATES = {
    "queue": (
        "QueueContract",
        "from stash2plex_backends.memory import MemoryQueue as Base",
        "@pytest.fixture\n    def queue(self, clock):\n        return Broken(clock)",
    ),
    "state": (
        "StateStoreContract",
        "from stash2plex_backends.memory import MemoryStateStore as Base",
        "@pytest.fixture\n    def state_store(self, clock):\n        return Broken(clock)",
    ),
    "plex": (
        "PlexGatewayContract",
        "from stash2plex_backends.memory.plex import MemoryPlex as Base\n"
        "from stash2plex_backends.memory.worlds import MemoryPlexWorld",
        "@pytest.fixture\n    def plex_world(self):\n        world = MemoryPlexWorld()\n"
        "        world.gateway.__class__ = Broken\n        return world",
    ),
    "stash": (
        "StashGatewayContract",
        "from stash2plex_backends.memory.stash import MemoryStash as Base\n"
        "from stash2plex_backends.memory.worlds import MemoryStashWorld",
        "@pytest.fixture\n    def stash_world(self):\n        world = MemoryStashWorld()\n"
        "        world.gateway.__class__ = Broken\n        return world",
    ),
}


@pytest.mark.parametrize("case", sorted(SABOTAGE))
def test_contract_fails_a_broken_backend(pytester: pytest.Pytester, case: str) -> None:
    port, body, failing_test = SABOTAGE[case]
    contract, imports, fixture = TEMPLATES[port]
    pytester.makeconftest('pytest_plugins = ["stash2plex_core.testing.plugin"]\n')
    pytester.makepyfile(
        test_broken=f"import pytest\n{imports}\n"
        f"from stash2plex_core.testing.contracts import {contract}\n\n\n"
        f"class Broken(Base):\n{textwrap.indent(textwrap.dedent(body), '    ')}\n\n"
        f"class TestBroken({contract}):\n    {fixture}\n"
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, result.stdout.str()
    result.stdout.fnmatch_lines([f"*FAILED*{failing_test}*"])


def test_unchanged_backend_passes_the_same_harness(pytester: pytest.Pytester) -> None:
    """The harness itself is sound: without sabotage every contract passes."""
    pytester.makeconftest('pytest_plugins = ["stash2plex_core.testing.plugin"]\n')
    contract, imports, fixture = TEMPLATES["queue"]
    pytester.makepyfile(
        test_ok=f"import pytest\n{imports}\nfrom stash2plex_core.testing.contracts import {contract}\n\n\n"
        f"class Broken(Base):\n    pass\n\n\nclass TestOk({contract}):\n    {fixture}\n"
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    from stash2plex_core.testing.contracts import QueueContract

    tests = [name for name in dir(QueueContract) if name.startswith("test_")]
    result.assert_outcomes(passed=len(tests) - 1, skipped=1)  # the durability test skips


def test_contract_without_fixture_says_what_to_provide(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_missing="from stash2plex_core.testing.contracts import QueueContract\n\n\nclass TestMissing(QueueContract):\n    pass\n"
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", "test_enqueue_makes")
    result.stdout.fnmatch_lines(["*provide a `queue` fixture*"])


DURABILITY_HARNESS = """
import pytest
from stash2plex_backends.memory import MemoryQueue, MemoryStateStore
from stash2plex_core.testing.contracts import QueueContract, StateStoreContract
from stash2plex_core.testing.contracts._capabilities import Capabilities


class TestQueue(QueueContract):
    @pytest.fixture
    def queue(self, clock):
        return MemoryQueue(clock)

    @pytest.fixture
    def capabilities(self):
        return Capabilities(durable=True)

    @pytest.fixture
    def reopen_queue(self, queue, clock):
        return lambda: {reopen_queue}


class TestState(StateStoreContract):
    @pytest.fixture
    def state_store(self, clock):
        return MemoryStateStore(clock)

    @pytest.fixture
    def capabilities(self):
        return Capabilities(durable=True)

    @pytest.fixture
    def reopen_state_store(self, state_store, clock):
        return lambda: {reopen_state}
"""


def test_durability_contracts_pass_storage_that_survives(pytester: pytest.Pytester) -> None:
    """A backend whose "reopen" sees the same storage (here: the same memory instance) passes.

    This is what a correct durable backend looks like to the contract; the durability tests
    must not fail it, whatever order the jobs are due in.
    """
    pytester.makepyfile(test_same=DURABILITY_HARNESS.format(reopen_queue="queue", reopen_state="state_store"))
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", "durable")
    result.assert_outcomes(passed=2)


def test_durability_contracts_fail_storage_that_forgets(pytester: pytest.Pytester) -> None:
    """A backend claiming durability whose reopened instance starts empty fails both."""
    pytester.makepyfile(
        test_fresh=DURABILITY_HARNESS.format(reopen_queue="MemoryQueue(clock)", reopen_state="MemoryStateStore(clock)")
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", "durable")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*FAILED*TestQueue::test_durable_across_reopen*"])
    result.stdout.fnmatch_lines(["*FAILED*TestState::test_durable_across_reopen*"])
