"""The teacher password: checked in constant time, behind a rate limiter, every wrong try logged.

Two limits, so neither one browser nor many can guess: each session gets FREE_TRIES wrong tries,
then waits BASE_DELAY seconds, doubled at every further wrong try (at most MAX_DELAY); and when
GLOBAL_LIMIT wrong tries arrive within GLOBAL_WINDOW seconds from all sessions together, every
sign-in waits until the window has passed. A refused try is not checked at all, so waiting is
the only way on. The log names the session by the opaque tag the caller passes, never the
password or what was typed.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("lenet.classroom")

FREE_TRIES = 3        # wrong tries a session gets before it must wait
BASE_DELAY = 5.0      # seconds after the first wrong try beyond them; doubled at each further one
MAX_DELAY = 600.0
GLOBAL_LIMIT = 20     # wrong tries from all sessions together ...
GLOBAL_WINDOW = 60.0  # ... within this many seconds close every sign-in until the window passes
MAX_KEYS = 10_000     # sessions remembered; beyond it, those no longer waiting are forgotten


@dataclass(frozen=True)
class SignIn:
    ok: bool
    message: str        # what the page shows: never the password, never another session's state
    wait: float = 0.0   # seconds before this session may try again


def _digest(text: str) -> bytes:
    # equal-length digests: compare_digest then reveals not even the password's length
    return hashlib.sha256(text.encode("utf-8")).digest()


class Gate:
    """One per server: `attempt(key, typed)` checks a sign-in from the session `key`."""

    def __init__(self, password: str, clock: Callable[[], float] = time.monotonic):
        if not password:
            raise ValueError("a teacher gate needs a non-empty password")
        self._want = _digest(password)
        self._clock = clock
        self._lock = threading.Lock()
        self._wrong: dict[str, int] = {}         # key -> wrong tries in a row
        self._until: dict[str, float] = {}       # key -> when it may try again
        self._recent: deque[float] = deque()     # times of wrong tries from every key

    def attempt(self, key: str, typed: str) -> SignIn:
        with self._lock:
            now = self._clock()
            while self._recent and self._recent[0] <= now - GLOBAL_WINDOW:
                self._recent.popleft()
            wait = self._until.get(key, 0.0) - now
            if wait > 0:
                log.warning("teacher sign-in refused for session %s: locked for %.0f s more", key, wait)
                return SignIn(False, f"Too many wrong passwords: try again in {wait:.0f} s.", wait)
            if len(self._recent) >= GLOBAL_LIMIT:
                wait = self._recent[0] + GLOBAL_WINDOW - now
                log.warning("teacher sign-in refused for session %s: %d wrong tries from all sessions in %.0f s",
                            key, len(self._recent), GLOBAL_WINDOW)
                return SignIn(False, f"Too many wrong passwords on this server: sign-in is closed for {wait:.0f} s.",
                              wait)
            if hmac.compare_digest(_digest(str(typed or "")), self._want):
                self._wrong.pop(key, None)
                self._until.pop(key, None)
                log.info("teacher signed in from session %s", key)
                return SignIn(True, "Signed in as the teacher.")
            if len(self._wrong) >= MAX_KEYS:  # many sessions guessing must not fill the server's memory
                self._forget_idle(now)
            wrong = self._wrong.get(key, 0) + 1
            self._wrong[key] = wrong
            self._recent.append(now)
            wait = 0.0 if wrong < FREE_TRIES else min(MAX_DELAY, BASE_DELAY * 2 ** (wrong - FREE_TRIES))
            if wait:
                self._until[key] = now + wait
            log.warning("wrong teacher password from session %s (%d in a row%s)", key, wrong,
                        f"; it waits {wait:.0f} s" if wait else "")
            return SignIn(False, "Wrong password." + (f" Try again in {wait:.0f} s." if wait else ""), wait)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k in self._wrong if self._until.get(k, 0.0) <= now]:
            self._wrong.pop(key, None)
            self._until.pop(key, None)
