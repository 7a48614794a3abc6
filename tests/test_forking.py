"""``map_forked``: work in forked processes, in order, or None so that the caller works here."""

from __future__ import annotations

import os
import time

import pytest

from llmops_magics import forking
from llmops_magics.errors import JobCancelledError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def _pid_and_square(n: int) -> tuple[int, int, int]:
    if n % 3 == 0:
        time.sleep(0.05)  # unequal items: results must still come back in order
    return os.getpid(), n * n, forked_state_value()


def forked_state_value() -> int:
    return forking.forked_state()["offset"]


def _sleep(n: int) -> int:
    time.sleep(3600)
    return n


def _fail(n: int) -> int:
    raise ValueError(f"item {n} is bad")


def test_results_come_back_in_order_from_other_processes_with_the_inherited_state():
    heard = []
    out = forking.map_forked(
        _pid_and_square, list(range(12)), workers=2, stall_s=60, state={"offset": 7}, each=lambda i, r: heard.append(i)
    )
    assert [sq for _, sq, _ in out] == [n * n for n in range(12)]
    assert {pid for pid, _, _ in out} - {os.getpid()} == {pid for pid, _, _ in out}  # none made here
    assert len({pid for pid, _, _ in out}) == 2
    assert {off for _, _, off in out} == {7}
    assert sorted(heard) == list(range(12))
    assert forking.forked_state() is None  # the slot is emptied afterwards


def test_a_stalled_map_kills_its_workers_and_returns_none():
    started = time.monotonic()
    assert forking.map_forked(_sleep, [1, 2], workers=2, stall_s=1.0) is None
    assert time.monotonic() - started < 20


def test_cancelling_kills_the_workers_and_raises():
    started = time.monotonic()
    with pytest.raises(JobCancelledError):
        forking.map_forked(_sleep, [1, 2], workers=2, stall_s=600, cancelled=lambda: time.monotonic() - started > 0.5)
    assert time.monotonic() - started < 20


def test_an_error_raised_by_the_work_is_raised_here():
    with pytest.raises(ValueError, match=r"item . is bad"):
        forking.map_forked(_fail, [0, 1], workers=2, stall_s=60)


def test_a_dead_worker_means_none():
    assert forking.map_forked(os._exit, [3, 3], workers=2, stall_s=60) is None


def test_one_forked_map_at_a_time():
    with forking._forking:  # another thread's map holds the state slot
        assert forking.map_forked(_pid_and_square, [1, 2], workers=2, stall_s=60, state={"offset": 0}) is None


def test_nothing_to_do_forks_nothing():
    assert forking.map_forked(_fail, [], workers=2, stall_s=60) == []
