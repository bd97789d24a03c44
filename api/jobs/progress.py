"""How a computation reports progress and learns it was cancelled; how a client says how long it waits."""

from __future__ import annotations

import re

MAX_WAIT_SECONDS = 3600.0


class JobCancelled(Exception):
    """Raised inside the computation at its next progress report once its job is cancelled."""


class ProgressReporter:
    """Receives fractions done from the computation (any thread); the job's heartbeat reads the latest.

    Cancelling it makes the next report raise :class:`JobCancelled`, which ends numerical work running
    in a thread (a thread cannot be cancelled from outside).
    """

    def __init__(self) -> None:
        self.fraction = 0.0
        self.cancelled = False

    def __call__(self, fraction: float) -> None:
        if self.cancelled:
            raise JobCancelled
        self.fraction = min(1.0, max(self.fraction, float(fraction)))

    def cancel(self) -> None:
        self.cancelled = True


def preferred_wait(prefer: str | None) -> float | None:
    """Seconds the client will wait for a synchronous answer (RFC 7240 ``Prefer``), or ``None``."""
    if not prefer:
        return None
    wait = re.search(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)", prefer, flags=re.IGNORECASE)
    if wait is not None:
        return min(float(wait.group(1)), MAX_WAIT_SECONDS)
    if re.search(r"(?:^|[,;\s])respond-async(?:$|[,;\s])", prefer, flags=re.IGNORECASE):
        return 0.0
    return None
