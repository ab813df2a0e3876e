"""Pure pieces of the plexapi backend: the edit arguments, error translation, token scrubbing."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest
import requests
from plexapi.exceptions import BadRequest
from plexapi.exceptions import NotFound
from plexapi.exceptions import Unauthorized
from plexapi.utils import joinArgs
from urllib3.exceptions import ReadTimeoutError

from stash2plex_backends.plex import PlexApiGateway
from stash2plex_backends.plex._edit import edit_args
from stash2plex_backends.plex._errors import parse_retry_after
from stash2plex_backends.plex._errors import scrub
from stash2plex_backends.plex._errors import translate
from stash2plex_core.clocks import ManualClock
from stash2plex_core.errors import AuthenticationError
from stash2plex_core.errors import BackendUnavailableError
from stash2plex_core.errors import NotFoundError
from stash2plex_core.errors import PermanentError
from stash2plex_core.errors import TransientError
from stash2plex_core.models.plex import PlexEdit
from stash2plex_core.models.plex import TagEdit


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_edit_args_send_full_lists_double_quoted_removals_clears_and_locks() -> None:
    edit = PlexEdit(
        fields={"title": "T & T", "tagline": ""},
        tags={
            "genre": TagEdit(values=("Keep", "Neu, mit Komma"), removed=("A,1", "50% off", "B/2")),
            "actor": TagEdit(values=("Zoë", "Bo"), photos={"Zoë": "http://h/p.png?x=1"}),
            "label": TagEdit(values=(), removed=("old",)),
        },
        locks={"title": True, "genre": True, "studio": False},
    )
    args = edit_args("110", edit)
    assert args == {
        "type": "1",
        "id": "110",
        "title.value": "T & T",
        "tagline.value": "",
        "title.locked": "1",
        "genre.locked": "1",
        "studio.locked": "0",
        "genre[0].tag.tag": "Keep",
        "genre[1].tag.tag": "Neu, mit Komma",
        "genre[].tag.tag-": "A%2C1,50%25%20off,B%2F2",
        "actor[0].tag.tag": "Zoë",
        "actor[0].tag.thumb": "http://h/p.png?x=1",
        "actor[1].tag.tag": "Bo",
        "label[].tag.tag-": "old",
        "label[].tag": "",
    }
    # On the wire (plexapi's joinArgs quotes every value once more), removals decode back exactly.
    query = urllib.parse.parse_qs(joinArgs(args)[1:], keep_blank_values=True)
    removed = [urllib.parse.unquote(n) for n in query["genre[].tag.tag-"][0].split(",")]
    assert removed == ["A,1", "50% off", "B/2"]
    assert query["id"] == ["110"]


def test_edit_args_always_name_the_item() -> None:
    with pytest.raises(ValueError, match="ratingKey"):
        edit_args("", PlexEdit(fields={"title": "x"}))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 0 ", 0.0), ("-3", 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
)
def test_retry_after_delay_seconds(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:30 GMT", NOW) == 90.0
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", NOW) == 0.0


def test_scrub_masks_raw_encoded_and_query_tokens() -> None:
    token = "a/b+c=d"
    text = f"x {token} {urllib.parse.quote(token, safe='')} {urllib.parse.quote_plus(token)} ?X-Plex-Token=zzz&a=1"
    assert scrub(text, [token, None]) == "x *** *** *** ?X-Plex-Token=***&a=1"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (Unauthorized("(401) unauthorized; http://h/ <html/>"), AuthenticationError),
        (NotFound("(404) not_found; http://h/x"), NotFoundError),
        (BadRequest("(503) service_unavailable; http://h/x"), BackendUnavailableError),
        (BadRequest("(429) too_many_requests; http://h/x"), TransientError),
        (BadRequest("(400) bad_request; http://h/x"), PermanentError),
        (BadRequest("Invalid filter field: Media__Part__file"), PermanentError),
    ],
)
def test_translate_plexapi_exceptions(exc: Exception, expected: type) -> None:
    error = translate(exc, secrets=["tok"], retry_after="5", now=NOW)
    assert type(error) is expected


def test_translate_leaves_our_own_bugs_alone() -> None:
    assert translate(KeyError("x"), secrets=[], now=NOW) is None
    assert translate(TypeError("bug"), secrets=[], now=NOW) is None
    assert translate(TypeError("x"), secrets=[], last_status=200, now=NOW) is None


@pytest.mark.parametrize(
    ("exc", "blip"),
    [
        (requests.exceptions.ConnectionError("connection refused"), True),
        (requests.exceptions.ConnectionError("connection reset by peer"), True),
        (requests.exceptions.ReadTimeout("read timed out"), False),
        # ConnectTimeout is also a ConnectionError: still no blip.
        (requests.exceptions.ConnectTimeout("connect timed out"), False),
        # A read timeout while the body streams arrives as a ConnectionError around urllib3's.
        (requests.exceptions.ConnectionError(ReadTimeoutError(None, "/x", "read timed out")), False),
        (requests.exceptions.SSLError("bad certificate"), False),
    ],
)
def test_only_refused_or_reset_connections_are_retried_at_once(exc: Exception, blip: bool) -> None:
    gateway = PlexApiGateway("http://127.0.0.1:1", "tok", clock=ManualClock())
    assert gateway._is_blip(exc) is blip


def test_a_read_timeout_while_streaming_is_a_timeout_not_an_outage() -> None:
    exc = requests.exceptions.ConnectionError(ReadTimeoutError(None, "/x", "read timed out"))
    error = translate(exc, secrets=[], now=NOW)
    assert type(error) is TransientError
    assert "in time" in str(error)
