"""Login throttling (issue 14, item 4): progressive delay by (user, source) and by source, never a lockout
of a user name as such; the in-memory throttle of a server and the stored rule of the CLI agree."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from sitetwin.oversight import accounts
from sitetwin.oversight.accounts import LoginThrottle, LoginThrottled, add_account, backoff_s, login
from sitetwin.oversight.errors import AuthError
from sitetwin.oversight.scope import Scope

ADMIN = Scope.system("setup")
PW = "correct horse battery"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def people(sites_store):
    add_account(sites_store, ADMIN, "dora", "district_regulator", password=PW, district="Jiang'an", city="Wuhan")
    add_account(sites_store, ADMIN, "cole", "contractor", password=PW, sites=["WH-JA-1"])
    return sites_store


def _fail(throttle, user, source, n=1):
    for _ in range(n):
        throttle.failed(user, source)


def test_the_delay_doubles_per_failure_after_the_free_ones_and_is_capped():
    free = accounts.FREE_FAILURES_PER_PAIR
    assert [backoff_s(n, free) for n in range(free)] == [0.0] * free
    assert [backoff_s(free + k, free) for k in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(free + 1000, free) == accounts.BACKOFF_MAX_S


def test_a_guessed_user_name_slows_down_only_from_the_guessing_source():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    _fail(throttle, "dora", "203.0.113.9", accounts.FREE_FAILURES_PER_PAIR + 2)    # delay now 4 s
    with pytest.raises(LoginThrottled) as refused:
        throttle.check("dora", "203.0.113.9")
    assert refused.value.retry_after_s == 4
    assert "203.0.113.9" not in str(refused.value) and "user name from here" in str(refused.value)
    throttle.check("dora", "198.51.100.7")          # the owner elsewhere: not throttled at all
    throttle.check("cole", "203.0.113.9")           # another name from the guessing source: not yet
    clock.t += 4.01
    throttle.check("dora", "203.0.113.9")           # the delay has passed


def test_a_source_trying_many_names_is_slowed_down_for_every_name():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for i in range(accounts.FREE_FAILURES_PER_SOURCE):
        throttle.failed(f"user{i}", "203.0.113.9")
    with pytest.raises(LoginThrottled, match="failed logins from here"):
        throttle.check("somebody-new", "203.0.113.9")
    throttle.check("somebody-new", "198.51.100.7")


def test_a_success_clears_its_pair_but_not_its_source():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    _fail(throttle, "dora", "10.0.0.9", accounts.FREE_FAILURES_PER_PAIR)
    clock.t += accounts.BACKOFF_MAX_S
    throttle.succeeded("dora", "10.0.0.9")
    throttle.check("dora", "10.0.0.9")
    throttle.failed("dora", "10.0.0.9")
    throttle.check("dora", "10.0.0.9")             # counting starts again
    assert throttle._failures[("source", "10.0.0.9")][0] == accounts.FREE_FAILURES_PER_PAIR + 1


def test_a_quiet_window_forgets_the_failures():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    _fail(throttle, "dora", "10.0.0.9", 40)
    with pytest.raises(LoginThrottled) as refused:
        throttle.check("dora", "10.0.0.9")
    assert refused.value.retry_after_s == accounts.BACKOFF_MAX_S
    clock.t += accounts.THROTTLE_WINDOW_S + 1
    throttle.check("dora", "10.0.0.9")
    throttle.failed("dora", "10.0.0.9")
    throttle.check("dora", "10.0.0.9")             # one failure after the quiet window: no delay


def test_the_throttle_keeps_a_bounded_number_of_keys():
    throttle = LoginThrottle(max_keys=50)
    for i in range(500):
        throttle.failed("x" * 10_000, f"198.51.100.{i % 250}/{i}")
    assert len(throttle._failures) <= 50
    assert all(len(k[-1]) <= 65 for k in throttle._failures if k[0] == "pair")


def test_failures_counted_from_many_threads_at_once_are_all_counted():
    throttle = LoginThrottle(clock=Clock())

    def hammer():
        for _ in range(200):
            throttle.failed("dora", "10.0.0.9")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert throttle._failures[("pair", "10.0.0.9", "dora")][0] == 1600


def test_a_throttled_login_writes_nothing_and_does_not_check_the_password(people, snapshot):
    throttle = LoginThrottle(clock=Clock())
    for i in range(accounts.FREE_FAILURES_PER_PAIR):
        with pytest.raises(AuthError, match="wrong user name"):
            login(people, "dora", f"guess {i}", source="10.0.0.9", throttle=throttle)
    before = snapshot(people)
    with pytest.raises(LoginThrottled):
        login(people, "dora", PW, source="10.0.0.9", throttle=throttle)      # even the right password waits
    assert snapshot(people) == before
    assert login(people, "dora", PW, source="10.0.0.10", throttle=throttle).username == "dora"


def test_the_cli_applies_the_same_rule_to_the_stored_attempts(people):
    t0 = dt.datetime(2024, 5, 1, 9, 0)
    n = accounts.FREE_FAILURES_PER_PAIR + 2
    for i in range(n):
        at = t0 + dt.timedelta(seconds=100 * i)        # each after the previous delay had passed
        with pytest.raises(AuthError, match="wrong user name"):
            login(people, "cole", f"guess {i}", source="cli", now=at)
    last = t0 + dt.timedelta(seconds=100 * (n - 1))
    memory = LoginThrottle(clock=Clock())
    _fail(memory, "cole", "cli", n)
    with pytest.raises(LoginThrottled) as stored:
        login(people, "cole", PW, source="cli", now=last + dt.timedelta(seconds=1))
    with pytest.raises(LoginThrottled) as kept:
        memory.check("cole", "cli")
    assert str(stored.value).split(";")[0] == str(kept.value).split(";")[0]
    assert stored.value.retry_after_s == 3 and kept.value.retry_after_s == 4     # 4 s after the last failure
    assert login(people, "cole", PW, source="cli", now=last + dt.timedelta(seconds=4.5)).username == "cole"


def test_odd_user_names_are_refused_like_wrong_passwords_and_stored_printable(people):
    for name in ("", "a", "x" * 5000, "dora\n", "dora\x00", "\ud800", "dora' OR '1'='1"):
        with pytest.raises(AuthError, match="wrong user name or password"):
            login(people, name, PW, source="10.9.9.9", throttle=LoginThrottle())
    stored = [r[0] for r in people.execute("SELECT username FROM login_attempts WHERE source = '10.9.9.9'")]
    assert len(stored) == 7 and max(len(s) for s in stored) <= 65
    assert not any("\x00" in s or "\ud800" in s for s in stored)
