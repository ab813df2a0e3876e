"""Probabilistic faults: a share of matching requests, seeded, falling through to the next fault."""

from __future__ import annotations

import pytest

from stash2plex_backends.simulators import Fault
from stash2plex_backends.simulators.faults import FaultInjector


def test_a_probabilistic_fault_fires_on_about_its_share_and_falls_through() -> None:
    injector = FaultInjector(seed=7)
    flaky = injector.add(Fault(path="^/library/", status=503, probability=0.3))
    slow = injector.add(Fault(path=".*", action="delay", delay=0.01))
    picks = [injector.pick("GET", "/library/metadata/1") for _ in range(10_000)]
    assert 2_800 <= flaky.fired <= 3_200
    assert flaky.fired + slow.fired == 10_000
    assert {id(p) for p in picks} == {id(flaky), id(slow)}


def test_the_same_seed_gives_the_same_faults() -> None:
    def run() -> list[bool]:
        injector = FaultInjector(seed=3)
        injector.add(Fault(status=503, probability=0.5))
        return [injector.pick("GET", "/") is not None for _ in range(200)]

    assert run() == run()


def test_probability_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="probability"):
        Fault(probability=1.5)
