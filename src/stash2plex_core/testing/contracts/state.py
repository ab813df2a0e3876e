"""The StateStore contract."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest

from stash2plex_core.clocks import ManualClock
from stash2plex_core.models.health import SyncRecord
from stash2plex_core.ports.state import StateStore
from stash2plex_core.serde import from_document
from stash2plex_core.serde import to_document
from stash2plex_core.testing.contracts._capabilities import Capabilities


class StateStoreContract:
    """Subclass, and provide a ``state_store`` fixture built on the ``clock`` fixture.

    Durable backends set ``capabilities`` (``durable=True``) and provide
    ``reopen_state_store`` returning a new instance over the same storage.
    """

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def state_store(self, clock: ManualClock) -> StateStore:
        raise NotImplementedError("provide a `state_store` fixture that builds your backend")

    @pytest.fixture
    def capabilities(self) -> Capabilities:
        return Capabilities()

    @pytest.fixture
    def reopen_state_store(self) -> Callable[[], StateStore]:
        raise NotImplementedError("durable backends provide `reopen_state_store`")

    def test_missing_is_none(self, state_store: StateStore) -> None:
        assert state_store.get("sync", "nope") is None
        assert state_store.keys("sync") == []

    def test_put_then_get(self, state_store: StateStore) -> None:
        doc = {"rating_key": "12", "tags": ["a", "é"], "nested": {"n": 1, "f": 1.5, "b": True, "z": None}}
        state_store.put("sync", "1", doc)
        assert state_store.get("sync", "1") == doc

    def test_documents_are_copies(self, state_store: StateStore) -> None:
        doc = {"tags": ["a"]}
        state_store.put("sync", "1", doc)
        doc["tags"].append("mutated-after-put")
        out = state_store.get("sync", "1")
        assert out == {"tags": ["a"]}
        out["tags"].append("mutated-after-get")
        assert state_store.get("sync", "1") == {"tags": ["a"]}

    def test_put_replaces(self, state_store: StateStore) -> None:
        state_store.put("sync", "1", {"a": 1, "b": 2})
        state_store.put("sync", "1", {"a": 3})
        assert state_store.get("sync", "1") == {"a": 3}

    def test_namespaces_are_separate_and_items_sorted(self, state_store: StateStore) -> None:
        state_store.put_many("sync", {"b": {"v": 2}, "a": {"v": 1}, "ü": {"v": 3}})
        state_store.put("breaker", "a", {"v": "other"})
        assert list(state_store.items("sync")) == [("a", {"v": 1}), ("b", {"v": 2}), ("ü", {"v": 3})]
        assert state_store.keys("breaker") == ["a"]

    def test_get_many_returns_what_exists_as_copies(self, state_store: StateStore) -> None:
        state_store.put_many("sync", {"1": {"v": [1]}, "2": {"v": [2]}, "ü": {"v": [3]}})
        state_store.put("posters", "1", {"v": "other namespace"})
        assert state_store.get_many("sync", []) == {}
        found = state_store.get_many("sync", ["2", "missing", "ü", "1", "2"])
        assert found == {"1": {"v": [1]}, "2": {"v": [2]}, "ü": {"v": [3]}}
        found["1"]["v"].append("mutated")
        assert state_store.get("sync", "1") == {"v": [1]}
        assert state_store.get_many("posters", ["1", "2"]) == {"1": {"v": "other namespace"}}
        with pytest.raises(ValueError, match="key"):
            state_store.get_many("sync", ["1", ""])
        with pytest.raises(ValueError, match="namespace"):
            state_store.get_many("", ["1"])

    def test_put_all_writes_every_namespace(self, state_store: StateStore) -> None:
        state_store.put("sync", "1", {"old": True})
        doc = {"tags": ["a"]}
        state_store.put_all({"sync": {"1": {"new": 1}, "2": doc}, "posters": {"1": {"sha1": "x"}}, "empty": {}})
        doc["tags"].append("mutated-after-put")
        assert dict(state_store.items("sync")) == {"1": {"new": 1}, "2": {"tags": ["a"]}}
        assert dict(state_store.items("posters")) == {"1": {"sha1": "x"}}
        assert state_store.keys("empty") == []
        state_store.put_all({})

    def test_put_all_checks_everything_before_writing(self, state_store: StateStore) -> None:
        with pytest.raises(TypeError, match="JSON"):
            state_store.put_all({"sync": {"1": {"a": 1}}, "posters": {"1": {"nan": float("nan")}}})
        with pytest.raises(ValueError, match="namespace"):
            state_store.put_all({"sync": {"1": {"a": 1}}, "": {"1": {"a": 1}}})
        assert state_store.get("sync", "1") is None

    def test_delete(self, state_store: StateStore) -> None:
        state_store.put("sync", "1", {"a": 1})
        assert state_store.delete("sync", "1") is True
        assert state_store.delete("sync", "1") is False
        assert state_store.get("sync", "1") is None

    def test_update_is_read_modify_write(self, state_store: StateStore) -> None:
        assert state_store.update("counters", "c", lambda cur: {"n": (cur or {"n": 0})["n"] + 1}) == {"n": 1}
        assert state_store.update("counters", "c", lambda cur: {"n": (cur or {"n": 0})["n"] + 1}) == {"n": 2}
        assert state_store.update("counters", "c", lambda cur: None) is None
        assert state_store.get("counters", "c") is None

    def test_concurrent_updates_lose_nothing(self, state_store: StateStore) -> None:
        def bump() -> None:
            for _ in range(20):
                state_store.update("counters", "c", lambda cur: {"n": (cur or {"n": 0})["n"] + 1})

        threads = [threading.Thread(target=bump) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert state_store.get("counters", "c") == {"n": 80}

    def test_rejects_what_json_cannot_hold(self, state_store: StateStore) -> None:
        with pytest.raises(TypeError, match="JSON"):
            state_store.put("sync", "1", {"when": dt.datetime.now(dt.UTC)})
        with pytest.raises(TypeError, match="JSON"):
            state_store.put("sync", "1", {"nan": float("nan")})
        with pytest.raises(ValueError, match="key"):
            state_store.put("sync", "", {"a": 1})
        with pytest.raises(ValueError, match="namespace"):
            state_store.get("", "1")
        assert state_store.get("sync", "1") is None

    def test_failed_update_changes_nothing(self, state_store: StateStore) -> None:
        state_store.put("sync", "1", {"a": 1})

        def explode(_: object) -> dict[str, int]:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            state_store.update("sync", "1", explode)
        assert state_store.get("sync", "1") == {"a": 1}

    def test_models_round_trip_through_the_converter(self, state_store: StateStore, clock: ManualClock) -> None:
        record = SyncRecord(
            scene_id="1",
            rating_key="42",
            digest="abc",
            stash_updated_at="2026-01-01T00:00:00+01:00",
            plex_updated_at=1700000000,
            synced_at=clock.now(),
            match_method="exact_path",
        )
        state_store.put("sync", "1", to_document(record))
        stored = state_store.get("sync", "1")
        assert stored is not None
        assert from_document(SyncRecord, stored) == record

    def test_durable_across_reopen(
        self, state_store: StateStore, capabilities: Capabilities, request: pytest.FixtureRequest
    ) -> None:
        """Every kind of write (put, put_many, put_all, update, delete) survives a new instance."""
        if not capabilities.durable:
            pytest.skip("backend is not durable (capabilities.durable is False)")
        reopen: Callable[[], StateStore] = request.getfixturevalue("reopen_state_store")
        state_store.put_many("sync", {"1": {"a": 1}, "2": {"b": [1, 2]}, "3": {"gone": True}})
        state_store.put("breaker", "plex", {"state": "open"})
        state_store.update("counters", "c", lambda cur: {"n": 1})
        state_store.put_all({"posters": {"1": {"sha1": "x"}}, "review": {"2": {"why": "low"}}})
        assert state_store.delete("sync", "3") is True
        other = reopen()
        try:
            assert dict(other.items("sync")) == {"1": {"a": 1}, "2": {"b": [1, 2]}}
            assert other.get("breaker", "plex") == {"state": "open"}
            assert other.get("counters", "c") == {"n": 1}
            assert other.get_many("posters", ["1"]) == {"1": {"sha1": "x"}}
            assert other.get("review", "2") == {"why": "low"}
        finally:
            other.close()


__all__ = ["StateStoreContract"]
