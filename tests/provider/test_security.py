"""The shared secret, signed image links, request limits, error hygiene and secret-free logs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from stash2plex_backends.memory import MemoryStash
from stash2plex_core.errors import TransientError
from stash2plex_core.settings import Secret
from stash2plex_integrations.plex_provider.logs import JsonFormatter
from stash2plex_integrations.plex_provider.logs import RedactingFilter
from stash2plex_integrations.plex_provider.web import MAX_BODY
from tests.provider.conftest import JPEG
from tests.provider.conftest import SECRET
from tests.provider.conftest import Provider


API_KEY = "stash-api-key-canary-77ab"
BASE = "http://plex-sees-me:9090"
MATCH = {"type": 1, "filename": "Studio A/scene 1.mp4"}


@pytest.fixture
def guarded(make_provider) -> Provider:
    return make_provider(provider_secret=Secret(SECRET), stash_api_key=Secret(API_KEY))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("POST", "/library/metadata/matches"),
        ("GET", "/library/metadata/scene-1"),
        ("GET", "/library/metadata/scene-1/images"),
        ("GET", "/library/collections/U3R1ZGlvIEE"),
        ("GET", "/gaps"),
        ("POST", "/gaps/run"),
    ],
)
def test_every_endpoint_needs_the_secret(guarded: Provider, method: str, path: str) -> None:
    response = guarded.client.request(method, path, json=MATCH if method == "POST" else None)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    wrong = guarded.client.request(method, path, headers={"X-Stash2Plex-Secret": SECRET + "x"})
    assert wrong.status_code == 401
    right = guarded.client.request(
        method, path, headers={"X-Stash2Plex-Secret": SECRET}, json=MATCH if method == "POST" else None
    )
    assert right.status_code == 200


def test_the_secret_as_path_prefix_header_bearer_or_query(guarded: Provider) -> None:
    client = guarded.client
    # The form Plex uses: the registered URL is http://host:9090/<secret>, features hang below it.
    assert client.get(f"/{SECRET}").json()["MediaProvider"]["identifier"]
    assert client.get(f"/{SECRET}/").status_code == 200
    response = client.post(f"/{SECRET}/library/metadata/matches", json=MATCH)
    assert response.json()["MediaContainer"]["Metadata"][0]["ratingKey"] == "scene-1"
    assert client.get(f"/{SECRET}/library/metadata/scene-1").status_code == 200
    assert client.get("/library/metadata/scene-1", headers={"Authorization": f"Bearer {SECRET}"}).status_code == 200
    assert client.get("/library/metadata/scene-1", params={"secret": SECRET}).status_code == 200
    assert client.get(f"/{SECRET}x/library/metadata/scene-1").status_code == 401
    assert client.get("/library/metadata/scene-1", params={"secret": ""}).status_code == 401


def test_health_needs_no_secret(guarded: Provider) -> None:
    response = guarded.client.get("/health")
    assert response.status_code == 200
    assert SECRET not in response.text
    assert API_KEY not in response.text


def test_image_links_are_signed_and_work_without_the_secret(guarded: Provider) -> None:
    client = guarded.client
    got = client.get(f"/{SECRET}/library/metadata/scene-1").json()["MediaContainer"]["Metadata"][0]
    thumb = got["thumb"]
    assert thumb.startswith(f"{BASE}/images/scene/1/screenshot?sig=")
    assert SECRET not in thumb  # the secret never ends up in Plex's database
    assert client.get(thumb.removeprefix(BASE)).content == JPEG
    photo = got["Role"][0]["thumb"]
    assert photo.startswith(f"{BASE}/images/scene/1/performer/7?sig=")
    assert client.get(photo.removeprefix(BASE)).status_code == 200
    # A signature is valid for its own path only.
    signature = thumb.split("sig=")[1]
    assert client.get(f"/images/scene/2/screenshot?sig={signature}").status_code == 401
    assert client.get("/images/scene/1/screenshot").status_code == 401
    assert client.get("/images/scene/1/screenshot?sig=0000").status_code == 401
    assert client.get("/images/scene/1/screenshot", headers={"X-Stash2Plex-Secret": SECRET}).content == JPEG


def test_oversized_bodies_are_refused(provider: Provider) -> None:
    big = json.dumps({"type": 1, "filename": "a.mp4", "pad": "x" * (MAX_BODY + 10)})
    response = provider.client.post(
        "/library/metadata/matches", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413

    def chunks():  # no Content-Length: counted while read
        yield b'{"type": 1, "pad": "'
        for _ in range(MAX_BODY // 1000 + 2):
            yield b"x" * 1000
        yield b'"}'

    response = provider.client.post("/library/metadata/matches", content=chunks())
    assert response.status_code == 413


class BrokenStash(MemoryStash):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def _get_scene(self, scene_id: str):
        raise self.error

    def _find_by_path(self, path: str):
        raise self.error


def test_internal_errors_never_show_a_stack_trace(make_provider) -> None:
    provider = make_provider(BrokenStash(RuntimeError(f"boom with {API_KEY}")))
    response = provider.client.get("/library/metadata/scene-1")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    assert "Traceback" not in response.text
    assert API_KEY not in response.text


def test_stash_outages_are_503_with_retry_after(make_provider) -> None:
    provider = make_provider(BrokenStash(TransientError("Stash answered 503", retry_after=7)))
    response = provider.client.post("/library/metadata/matches", json=MATCH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    # An outage is no gap: nothing was learned about the file.
    assert provider.client.get("/gaps").json()["unmatched"]["count"] == 0


def test_no_secret_in_logs(guarded: Provider, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = guarded.client
    client.get(f"/{SECRET}/")
    client.post(f"/{SECRET}/library/metadata/matches", json=MATCH)
    client.post("/library/metadata/matches", params={"secret": SECRET}, json={"type": 1, "filename": "no/such.mp4"})
    client.get("/library/metadata/scene-1", headers={"X-Stash2Plex-Secret": SECRET})
    client.get("/library/metadata/scene-1", headers={"Authorization": f"Bearer {SECRET}"})
    client.get("/library/metadata/scene-1", params={"secret": SECRET + "wrong"})
    client.get(f"/{SECRET}wrong/library/metadata/scene-1")
    client.get("/health")
    # Our records only: the test client (httpx, playing Plex) logs the URLs it requests.
    ours = [r for r in caplog.records if r.name.startswith("stash2plex")]
    access = [r for r in ours if r.name == "stash2plex.provider.access"]
    assert len(access) == 8
    assert {"method", "path", "status", "duration_ms", "request_id"} <= set(vars(access[0]))
    assert [r.path for r in access][-2:] == ["/***/library/metadata/scene-1", "/health"]
    text = "".join(r.getMessage() + json.dumps(vars(r), default=str) for r in ours)
    assert SECRET not in text
    assert API_KEY not in text


def test_redacting_filter_scrubs_every_part_of_a_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter([SECRET, API_KEY, None, ""]))
    logger = logging.getLogger("tests.provider.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("url /%s/x?apikey=%s", SECRET, API_KEY, extra={"detail": f"key={API_KEY}"})
        try:
            int(f"failed with {SECRET}")
        except ValueError:
            logger.exception("oops %s", "x")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert SECRET not in out
    assert API_KEY not in out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert lines[0]["msg"] == "url /***/x?apikey=***"
    assert lines[0]["detail"] == "key=***"
    assert "***" in lines[1]["exc"]
