"""``counterfact serve``'s job workers: started beside the API and started again when one dies.

A worker outlives its database by itself (:func:`api.jobs.worker.run_worker`); what it cannot survive
(SIGKILL, the kernel's OOM killer, a crash of the interpreter) ends its process. The supervisor watches
the processes from a thread of the ``serve`` process and starts a new one in the place of each that
exited, waiting longer (up to ``MAX_RESTART_DELAY_SECONDS``) when one keeps dying right after its start.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger("counterfact.serve")

POLL_SECONDS = 0.5
QUICK_DEATH_SECONDS = 10.0  # a worker that dies sooner than this after its start counts as crash-looping
MAX_RESTART_DELAY_SECONDS = 30.0


@dataclass
class _Slot:
    process: subprocess.Popen[bytes]
    started: float
    quick_deaths: int = 0
    restart_at: float | None = None


@dataclass
class WorkerSupervisor:
    """Keeps ``count`` processes of ``command`` running until :meth:`stop`."""

    count: int
    command: Sequence[str]
    env: Mapping[str, str]
    restarts: int = 0
    _slots: list[_Slot] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(self.command), env=dict(self.env))

    def start(self) -> None:
        with self._lock:
            self._slots = [_Slot(self._spawn(), time.monotonic()) for _ in range(self.count)]
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self._thread.start()

    def pids(self) -> list[int]:
        with self._lock:
            return [slot.process.pid for slot in self._slots]

    def _watch(self) -> None:
        while not self._stopping.wait(POLL_SECONDS):
            with self._lock:
                for slot in self._slots:
                    self._tend(slot)

    def _tend(self, slot: _Slot) -> None:
        """Notice that the slot's process ended, and start its successor when its delay has passed."""
        now = time.monotonic()
        if slot.restart_at is None:
            code = slot.process.poll()
            if code is None:
                return
            lived = now - slot.started
            slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
            delay = min(MAX_RESTART_DELAY_SECONDS, 2.0**slot.quick_deaths - 1)
            slot.restart_at = now + delay
            logger.warning(
                "job worker %d exited with %s after %.0f s; starting another in %.0f s",
                slot.process.pid,
                code,
                lived,
                delay,
            )
        if now >= slot.restart_at:
            slot.process = self._spawn()
            slot.started = now
            slot.restart_at = None
            self.restarts += 1

    def stop(self, timeout: float) -> None:
        """Stop watching, then SIGTERM every worker (each hands its jobs back) and wait for them."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            processes = [slot.process for slot in self._slots]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            process.wait(timeout=timeout)
