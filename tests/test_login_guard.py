"""The guard against guessed passwords (studio/login_guard.py), on a clock the test moves: more than 10 failures for
a name or from an address within 5 minutes lock that name or address for 5 minutes."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from studio.login_guard import LoginGuard


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(guard: LoginGuard, times: int, name="alice", address="10.0.0.1", each: float = 1.0) -> None:
    for _ in range(times):
        assert guard.begin(name, address) == 0  # heard, and counted until taken back
        guard.clock.now += each


def test_ten_failures_are_heard_the_eleventh_locks_for_five_minutes():
    clock = Clock()
    guard = LoginGuard(clock=clock)
    fail(guard, 10)
    assert guard.wait("alice", "10.0.0.1") == 0
    assert guard.begin("alice", "10.0.0.1") == 0  # the eleventh, at 1010, is heard
    assert guard.wait("alice", "10.0.0.1") == 300
    clock.now += 299.5
    assert guard.wait("alice", "10.0.0.1") == 0.5
    clock.now += 0.5
    assert guard.wait("alice", "10.0.0.1") == 0


def test_failures_spread_over_more_than_five_minutes_never_lock():
    guard = LoginGuard(clock=Clock())
    fail(guard, 40, each=31.0)  # ten in any five minutes at most
    assert guard.wait("alice", "10.0.0.1") == 0


def test_one_name_is_locked_whatever_the_address():
    guard = LoginGuard(clock=Clock())
    for n in range(11):
        fail(guard, 1, address=f"10.0.0.{n}")
    assert guard.wait("alice", "192.168.1.1") > 0  # a new address, the same name
    assert guard.wait("bob", "192.168.1.1") == 0


def test_one_address_is_locked_whatever_the_name():
    guard = LoginGuard(clock=Clock())
    for n in range(11):
        fail(guard, 1, name=f"user{n}")
    assert guard.wait("someone-else", "10.0.0.1") > 0
    assert guard.wait("someone-else", "10.0.0.2") == 0


def test_the_refusal_says_how_long_to_wait():
    guard = LoginGuard(clock=Clock())
    assert guard.message(300) == "Too many failed logins for this name or from this address: try again in 5 minutes."
    assert guard.message(20).endswith("try again in 1 minute.")


def test_attempts_sent_at_once_count_before_any_is_answered():
    """Fifty guesses from fifty threads, none answered yet: eleven are heard, the rest refused."""
    guard = LoginGuard(clock=Clock())
    with ThreadPoolExecutor(16) as pool:
        waits = list(pool.map(lambda n: guard.begin("alice", f"10.0.1.{n}"), range(50)))
    assert sum(w == 0 for w in waits) == 11 and all(w == 300 for w in waits if w)


def test_a_right_password_is_taken_back_and_locks_no_one():
    guard = LoginGuard(clock=Clock())
    for _ in range(30):
        assert guard.begin("alice", "10.0.0.1") == 0
        guard.take_back("alice", "10.0.0.1")
    fail(guard, 10)
    assert guard.wait("alice", "10.0.0.1") == 0
