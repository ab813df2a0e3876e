"""Every failure mode becomes the right core error, never a silent ``None``."""

from __future__ import annotations

import json
import time

import pytest

from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators.stash import GraphQLFault
from stash2plex_backends.simulators.stash import StashSimulator
from stash2plex_backends.stash import StashApiGateway
from stash2plex_backends.stash._gateway import RETRY_DELAYS
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import TransientError
from stash2plex_core.settings import Secret
from stash2plex_core.settings import Settings
from tests.stash.conftest import KEY


@pytest.fixture
def seeded(stash_sim: StashSimulator, gateway: StashApiGateway) -> StashApiGateway:
    stash_sim.add_scene("/data/library/one.mp4", title="one")
    gateway.ping()  # connected: faults below hit our queries, not stashapi's constructor
    return gateway


def test_hang_past_the_timeout_is_transient_and_quick(stash_sim: StashSimulator) -> None:
    settings = Settings(stash_url=stash_sim.url, stash_api_key=Secret(KEY), stash_timeout=0.3)
    gateway = StashApiGateway.from_settings(settings, clock=None)  # type: ignore[arg-type]
    gateway.ping()
    stash_sim.faults.add(Fault(path="^/graphql$", action="hang", delay=5, times=1))
    started = time.monotonic()
    with pytest.raises(TransientError, match="did not answer in time"):
        gateway.get_scene("1")
    assert time.monotonic() - started < 2
    stash_sim.faults.add(Fault(path="^/scene/", action="hang", delay=5, times=1))
    started = time.monotonic()
    with pytest.raises(TransientError):
        gateway.fetch_image(f"{stash_sim.url}/scene/1/screenshot")
    assert time.monotonic() - started < 2


def test_hang_during_construction_is_transient(stash_sim: StashSimulator) -> None:
    gateway = StashApiGateway(stash_sim.url, api_key=KEY, timeout=0.3)
    stash_sim.faults.add(Fault(path="^/graphql$", action="hang", delay=5, times=1))
    with pytest.raises(TransientError):
        gateway.ping()
    assert gateway.ping().version  # not cached as broken: the next call connects


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_backend_unavailable(stash_sim: StashSimulator, seeded: StashApiGateway, status: int) -> None:
    stash_sim.faults.add(Fault(path="^/graphql$", status=status, headers={"Retry-After": "7"}, times=1))
    with pytest.raises(BackendUnavailableError, match=str(status)) as info:
        seeded.find_by_path("/data/library/one.mp4")
    assert info.value.retry_after == 7.0


def test_429_is_transient_with_retry_after(stash_sim: StashSimulator, seeded: StashApiGateway) -> None:
    stash_sim.faults.add(Fault(path="^/graphql$", status=429, headers={"Retry-After": "3"}, times=1))
    with pytest.raises(TransientError) as info:
        seeded.get_scene("1")
    assert not isinstance(info.value, BackendUnavailableError)
    assert info.value.retry_after == 3.0


def test_a_reset_connection_is_retried_at_once(stash_sim: StashSimulator, seeded: StashApiGateway) -> None:
    stash_sim.faults.add(Fault(path="^/graphql$", action="reset", times=1))
    stash_sim.requests.clear()
    assert seeded.get_scene("1") is not None
    assert len(stash_sim.requests) == 2


def test_persistent_resets_and_refusals_are_backend_unavailable(
    stash_sim: StashSimulator, manual_clock: ManualClock
) -> None:
    settings = Settings(stash_url=stash_sim.url, stash_api_key=Secret(KEY), stash_timeout=5.0)
    gateway = StashApiGateway.from_settings(settings, clock=manual_clock)
    gateway.ping()
    stash_sim.faults.add(Fault(path="^/graphql$", action="reset", times=4))
    stash_sim.requests.clear()
    started = manual_clock.monotonic()
    with pytest.raises(BackendUnavailableError):
        gateway.get_scene("1")
    assert len(stash_sim.requests) == 4  # the call and three immediate retries
    assert manual_clock.monotonic() - started == pytest.approx(sum(RETRY_DELAYS))  # slept on our clock
    stash_sim.refuse()
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        gateway.get_scene("1")
    stash_sim.accept()
    assert gateway.get_scene("1") is None  # reachable again (and the empty server has no scene 1)


def test_unreachable_at_first_use(stash_sim: StashSimulator) -> None:
    gateway = StashApiGateway(stash_sim.url, api_key=KEY, timeout=2)
    stash_sim.refuse()
    with pytest.raises(BackendUnavailableError):
        gateway.ping()


def test_malformed_json_is_transient(stash_sim: StashSimulator, seeded: StashApiGateway) -> None:
    stash_sim.faults.add(Fault(path="^/graphql$", action="malformed", times=1))
    with pytest.raises(TransientError, match="unreadable") as info:
        seeded.get_scene("1")
    assert not isinstance(info.value, PermanentError)


def test_whole_operation_graphql_error_is_transient(stash_sim: StashSimulator, seeded: StashApiGateway) -> None:
    stash_sim.graphql_faults.add(GraphQLFault(operation="^Stash2PlexFindScenes$", message="boom", times=1))
    with pytest.raises(TransientError, match="boom") as info:
        list(seeded.iter_scenes())
    assert not isinstance(info.value, BackendUnavailableError)


def test_database_locked_is_retried_then_transient(stash_sim: StashSimulator, seeded: StashApiGateway) -> None:
    stash_sim.graphql_faults.add(GraphQLFault.database_locked(operation="Stash2PlexFindScene", times=1))
    assert seeded.get_scene("1") is not None  # a blip: retried at once
    stash_sim.graphql_faults.add(GraphQLFault.database_locked(operation="Stash2PlexFindScene", times=4))
    with pytest.raises(TransientError, match="database is locked") as info:
        seeded.get_scene("1")
    assert not isinstance(info.value, BackendUnavailableError)


def test_validation_error_is_permanent(stash_sim: StashSimulator, seeded: StashApiGateway) -> None:
    """An older Stash without a field we select answers 422 GRAPHQL_VALIDATION_FAILED."""
    body = {
        "errors": [
            {
                "message": 'Cannot query field "groups" on type "Scene".',
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
            }
        ],
        "data": None,
    }
    stash_sim.faults.add(
        Fault(
            path="^/graphql$",
            status=422,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            times=1,
        )
    )
    with pytest.raises(PermanentError, match="groups"):
        seeded.get_scene("1")


def test_validation_error_inside_a_200_is_permanent(stash_sim: StashSimulator, seeded: StashApiGateway) -> None:
    stash_sim.graphql_faults.add(
        GraphQLFault(operation="Stash2PlexFindScene", message="bad input", code="GRAPHQL_VALIDATION_FAILED", times=1)
    )
    with pytest.raises(PermanentError, match="bad input"):
        seeded.get_scene("1")


def test_nullable_field_error_is_an_error_not_a_missing_scene(
    stash_sim: StashSimulator, seeded: StashApiGateway
) -> None:
    """stashapi logs these and returns ``None``; the gateway must not mistake that for 'not found'."""
    stash_sim.graphql_faults.add(GraphQLFault(field="findScene", message="partial failure", times=1))
    with pytest.raises(TransientError, match="partial failure"):
        seeded.get_scene("1")
    stash_sim.graphql_faults.add(
        GraphQLFault(operation="Stash2PlexFindScene", field="Scene.files", message="files broke", times=1)
    )
    with pytest.raises(TransientError, match="files broke"):
        seeded.get_scene("1")
    # and a genuinely missing scene is still None
    assert seeded.get_scene("424242") is None


def test_nested_error_during_iteration(stash_sim: StashSimulator, seeded: StashApiGateway) -> None:
    stash_sim.graphql_faults.add(
        GraphQLFault(operation="Stash2PlexFindScenes", field="Performer.image_path", message="img", times=1)
    )
    stash_sim.update_scene(1, performer_ids=[stash_sim.add_performer("P").id])
    with pytest.raises(TransientError, match="img"):
        list(seeded.iter_scenes())
