"""Exponential back-off after failed sign-ins against password guessing (OWASP Authentication Cheat Sheet): after
the n-th consecutive failure the next attempt is refused for ``base_s · 2^(n−1)`` seconds, capped at ``cap_s``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class LoginThrottle:
    """The failed sign-ins of one session; ``clock`` (seconds, monotonic) is injectable for tests."""

    base_s: float = 1.0
    cap_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    blocked_until: float = 0.0

    def wait_s(self) -> float:
        """Seconds until the next attempt is allowed (0: now)."""
        return max(0.0, self.blocked_until - self.clock())

    def failed(self) -> float:
        """Record a failed attempt; returns the delay before the next one."""
        self.failures += 1
        delay = min(self.cap_s, self.base_s * 2.0 ** min(self.failures - 1, 32))
        self.blocked_until = self.clock() + delay
        return delay

    def succeeded(self) -> None:
        self.failures, self.blocked_until = 0, 0.0
