"""Injected faults become the right core errors; blips are retried at once; the token never leaks."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time

import pytest

from stash2plex_backends.plex import PlexApiGateway
from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators.plex import PlexSimulator
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import ConfigurationError
from stash2plex_core.errors import InvalidSettingsError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import Stash2PlexError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.plex import ImageKind
from stash2plex_core.models.plex import ImageUpload
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.settings import parse_settings
from tests.plex.world import ROOT
from tests.plex.world import TOKEN
from tests.plex.world import gateway_for


DETAIL = r"^/library/metadata/\d+$"


@pytest.fixture
def key(sim: PlexSimulator, gateway: PlexApiGateway) -> str:
    """An item, with the gateway already connected (so faults hit the call under test)."""
    rating_key = str(sim.add_item(f"{ROOT}/fault.mp4"))
    gateway.sections()
    sim.requests.clear()
    return rating_key


@pytest.mark.parametrize(
    ("status", "error", "not_error"),
    [
        (400, PermanentError, NotFoundError),
        (403, PermanentError, NotFoundError),
        (404, NotFoundError, type(None)),
        (409, PermanentError, NotFoundError),
        (401, AuthenticationError, PermanentError),
        (408, TransientError, BackendUnavailableError),
        (429, TransientError, BackendUnavailableError),
        (500, BackendUnavailableError, PermanentError),
        (502, BackendUnavailableError, PermanentError),
        (503, BackendUnavailableError, PermanentError),
        (504, BackendUnavailableError, PermanentError),
    ],
)
def test_each_status_becomes_its_core_error_without_immediate_retry(
    sim: PlexSimulator, gateway: PlexApiGateway, key: str, status: int, error: type, not_error: type
) -> None:
    sim.faults.add(Fault(path=DETAIL, status=status, body=b"<html>nope</html>", times=1))
    with pytest.raises(error) as raised:
        gateway.get_item(key) if status != 404 else gateway.apply(key, PlexEdit(fields={"title": "x"}))
    assert not isinstance(raised.value, not_error)
    assert f"{status}" in str(raised.value)
    assert len(sim.requests) == 1  # HTTP errors are never retried inside the call


def test_a_503_is_never_permanent_and_carries_retry_after(
    sim: PlexSimulator, gateway: PlexApiGateway, key: str
) -> None:
    sim.faults.add(Fault(path=DETAIL, status=503, headers={"Retry-After": "120"}, times=1))
    with pytest.raises(BackendUnavailableError) as raised:
        gateway.get_item(key)
    assert not isinstance(raised.value, PermanentError)
    assert raised.value.retry_after == 120.0
    assert gateway.get_item(key).rating_key == key  # the fault is gone; so is the error


def test_a_429_carries_retry_after_as_seconds_or_http_date(
    sim: PlexSimulator, gateway: PlexApiGateway, key: str, clock: ManualClock
) -> None:
    sim.faults.add(Fault(path="/all$", status=429, headers={"Retry-After": "7"}, times=1))
    with pytest.raises(TransientError) as raised:
        gateway.resolve_path(f"{ROOT}/fault.mp4")
    assert type(raised.value) is TransientError
    assert raised.value.retry_after == 7.0
    later = email.utils.format_datetime(clock.now() + dt.timedelta(seconds=90), usegmt=True)
    sim.faults.add(Fault(path="/all$", status=429, headers={"Retry-After": later}, times=1))
    with pytest.raises(TransientError) as raised:
        list(gateway.iter_items())
    assert raised.value.retry_after == 90.0
    sim.faults.add(Fault(path="/all$", status=429, times=1))
    with pytest.raises(TransientError) as raised:
        list(gateway.iter_items())
    assert raised.value.retry_after is None


def test_a_status_code_plexapi_cannot_name_is_still_classified(
    sim: PlexSimulator, gateway: PlexApiGateway, key: str
) -> None:
    # plexapi does ``codes.get(status)[0]``: a proxy's 520 becomes a TypeError inside plexapi.
    sim.faults.add(Fault(path=DETAIL, status=520, times=1))
    with pytest.raises(BackendUnavailableError, match="520"):
        gateway.get_item(key)


def test_malformed_xml_is_transient(sim: PlexSimulator, gateway: PlexApiGateway, key: str) -> None:
    sim.faults.add(Fault(path=DETAIL, action="malformed", times=1))
    with pytest.raises(TransientError, match="malformed XML") as raised:
        gateway.get_item(key)
    assert not isinstance(raised.value, BackendUnavailableError)


def test_a_connection_blip_is_retried_at_once_on_the_clock(
    sim: PlexSimulator, gateway: PlexApiGateway, key: str, clock: ManualClock
) -> None:
    sim.faults.add(Fault(path=DETAIL, action="reset", times=2))
    assert gateway.get_item(key).rating_key == key
    assert sim.requests.count("GET", DETAIL) == 3
    assert clock.sleeps == [0.1, 0.2]


def test_a_lasting_reset_gives_up_after_three_retries(
    sim: PlexSimulator, gateway: PlexApiGateway, key: str, clock: ManualClock
) -> None:
    sim.faults.add(Fault(path=DETAIL, action="reset"))
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        gateway.get_item(key)
    assert sim.requests.count("GET", DETAIL) == 4
    assert clock.sleeps == [0.1, 0.2, 0.4]


def test_a_refused_connection_is_backend_unavailable(sim: PlexSimulator, clock: ManualClock) -> None:
    gateway = gateway_for(sim, clock)
    sim.refuse()
    try:
        with pytest.raises(BackendUnavailableError):
            gateway.ping()
        assert clock.sleeps == [0.1, 0.2, 0.4]
    finally:
        sim.accept()
    assert gateway.ping().name  # recovers once Plex is back


def test_a_hang_past_the_read_timeout_is_transient_at_once(sim: PlexSimulator, clock: ManualClock) -> None:
    """A timeout is no blip: retrying at once would hold the call for four read timeouts."""
    key = str(sim.add_item(f"{ROOT}/hang.mp4"))
    gateway = gateway_for(sim, clock, read_timeout=0.3)
    gateway.sections()
    sim.faults.add(Fault(path=DETAIL, action="hang", delay=2.0))
    started = time.monotonic()
    with pytest.raises(TransientError, match="in time") as raised:
        gateway.get_item(key)
    assert time.monotonic() - started < 1.0  # one attempt of 0.3 s, not four, nor the 2 s hang
    assert sim.requests.count("GET", DETAIL) == 1
    assert clock.sleeps == []  # the queue's durable schedule retries it, not this call
    assert not isinstance(raised.value, PermanentError)


def test_latency_is_only_latency(sim: PlexSimulator, gateway: PlexApiGateway, key: str) -> None:
    sim.faults.add(Fault(action="delay", delay=0.05))
    assert gateway.get_item(key).rating_key == key
    assert len(sim.requests) == 1


def test_a_wrong_token_is_an_authentication_error(sim: PlexSimulator, clock: ManualClock) -> None:
    gateway = PlexApiGateway(sim.url, "wrong-" + TOKEN, clock=clock)
    with pytest.raises(AuthenticationError, match="401"):
        gateway.sections()
    assert len(sim.requests) == 1


def test_an_oversized_image_is_refused_before_sending(sim: PlexSimulator, gateway: PlexApiGateway, key: str) -> None:
    huge = ImageUpload(ImageKind.POSTER, b"\0" * 10_000_001)
    with pytest.raises(PermanentError, match="10000001 bytes"):
        gateway.apply(key, PlexEdit(images=(huge,)))
    assert sim.requests.count("POST") == 0


def _failures(sim: PlexSimulator, clock: ManualClock) -> list[Stash2PlexError]:
    """One error of every kind, each from the real client over HTTP."""
    key = str(sim.add_item(f"{ROOT}/secret.mp4"))
    gateway = gateway_for(sim, clock, read_timeout=0.3, retry_waits=(0.0,))
    errors: list[Stash2PlexError] = []

    def expect(call) -> None:
        try:
            call()
        except Stash2PlexError as exc:
            errors.append(exc)
        else:  # pragma: no cover - the fault must fire
            raise AssertionError("expected a failure")

    gateway.apply(key, PlexEdit(fields={"title": "ok"}))
    for status in (400, 401, 404, 429, 500, 503):
        sim.faults.add(Fault(path=DETAIL, status=status, headers={"Retry-After": "3"}, times=1))
        expect(lambda: gateway.get_item(key))
    for action in ("malformed", "reset", "hang"):
        sim.faults.add(Fault(path=DETAIL, action=action, delay=1.0, times=2))  # type: ignore[arg-type]
        expect(lambda: gateway.get_item(key))
    expect(lambda: gateway.apply("999999", PlexEdit(fields={"title": "x"})))
    expect(lambda: PlexApiGateway(sim.url, "bad-" + TOKEN, clock=clock).ping())
    sim.refuse()
    try:
        expect(lambda: gateway_for(sim, clock, retry_waits=()).ping())
    finally:
        sim.accept()
    return errors


def test_the_token_never_appears_in_errors_or_logs(
    sim: PlexSimulator, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, plexapi's, urllib3's
    for name in ("urllib3", "plexapi", "stash2plex_backends"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        errors = _failures(sim, clock)
    finally:
        for name in ("urllib3", "plexapi", "stash2plex_backends"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert len(errors) == 12
    assert {type(e) for e in errors} >= {
        AuthenticationError,
        NotFoundError,
        PermanentError,
        TransientError,
        BackendUnavailableError,
    }
    assert caplog.records, "DEBUG logging captured nothing; the check would be vacuous"
    assert any("127.0.0.1" in r.getMessage() for r in caplog.records)
    for error in errors:
        for text in (str(error), repr(error), *map(str, error.args)):
            assert TOKEN not in text
        assert error.__cause__ is None
    assert TOKEN not in caplog.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage()


@pytest.mark.parametrize("suffix", [f"/?X-Plex-Token={TOKEN}", f"?X-Plex-Token={TOKEN}&x=1", f"/#{TOKEN}"])
def test_a_plex_url_with_a_query_is_refused_without_showing_it(
    sim: PlexSimulator, clock: ManualClock, caplog: pytest.LogCaptureFixture, suffix: str
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = PlexApiGateway(sim.url + suffix, None, clock=clock)
    assert TOKEN not in repr(gateway)
    with pytest.raises(ConfigurationError, match="query string or fragment") as raised:
        gateway.ping()
    assert TOKEN not in str(raised.value)
    assert TOKEN not in caplog.text
    assert len(sim.requests) == 0  # refused before anything is sent
    # Settings refuse it when they load, naming the setting but not the value.
    with pytest.raises(InvalidSettingsError, match="plex_url") as invalid:
        parse_settings({"plex_url": sim.url + suffix})
    assert TOKEN not in str(invalid.value)
