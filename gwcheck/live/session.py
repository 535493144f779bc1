"""A live session: the capture program's stream read on a thread, its packet tables fed to the analysis, a snapshot
handed to the view every interval, and on stop (a call to ``stop``, the duration, or the program ending) the rest
of the stream read and the final Report made.  Nothing here prints: callers get callbacks and a ``LiveResult``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from ..capture.live import STOP_TIMEOUT_S, CaptureProcess
from ..decode.geneve import GENEVE_PORT
from ..errors import GwcheckError
from ..report.model import Report
from .analysis import LiveAnalysis
from .view import Snapshot, take_snapshot

POLL_S = 0.1  # longest the session waits before looking at the clock and the stop flag again
LIVE_BATCH_BYTES = 1 << 20  # a pipe read returns what is there, up to this


@dataclass
class LiveResult:
    """How a live session went, and its final Report (None when the capture never started)."""

    report: Report | None
    stopped_by: str  # "duration", "interrupt", "capture ended" (the program exited 0 on its own), "capture failed"
    elapsed_s: float  # from the first bytes of the capture to its end
    packets: int
    error: GwcheckError | None = None  # why the capture failed; the report holds what was read before
    capture: dict = field(default_factory=dict)  # program, command, interface, filter, kernel drops


class LiveSession:
    """Run ``capture``, feed ``analysis`` with what it captures, and call back as it goes.

    ``on_start()`` is called once the capture's first bytes arrive (the program is capturing); ``on_interval``
    with a ``Snapshot`` every ``interval_s`` after that.  The capture stops after ``duration_s`` (None: when
    ``stop`` is called, or the program ends).  ``tee`` receives every byte of the capture as read.
    """

    def __init__(
        self,
        capture: CaptureProcess,
        analysis: LiveAnalysis,
        *,
        name: str,
        port: int = GENEVE_PORT,
        duration_s: float | None = None,
        interval_s: float = 2.0,
        on_start: Callable[[], None] | None = None,
        on_interval: Callable[[Snapshot], None] | None = None,
        tee: BinaryIO | None = None,
        batch_bytes: int = LIVE_BATCH_BYTES,
    ) -> None:
        self.capture, self.analysis = capture, analysis
        self.name, self.port, self.duration_s, self.interval_s = name, port, duration_s, interval_s
        self.on_start, self.on_interval, self.tee, self.batch_bytes = on_start, on_interval, tee, batch_bytes
        self._stop = threading.Event()
        self._stop_reason = "interrupt"
        self._queue: queue.Queue = queue.Queue()
        self._started = threading.Event()
        self._packets = 0
        self._tables = 0
        self._reader_error: BaseException | None = None

    def stop(self, reason: str = "interrupt") -> None:
        """Ask the session to stop; safe from a signal handler or another thread."""
        self._stop_reason = reason
        self._stop.set()

    def run(self) -> LiveResult:
        """Capture until stopped; raises ``LiveCaptureError`` when the capture program cannot be run at all."""
        stdout = self.capture.start()
        reader = threading.Thread(target=self._read, args=(stdout,), name="gwcheck live reader", daemon=True)
        reader.start()
        try:
            started_at, stopped_at, ended = self._follow()
        except BaseException:
            self.capture.stop()  # a failing view or analysis, or a second Ctrl-C: leave no capture running
            raise
        if not ended:
            self.capture.stop()
            self._drain()
        elif self.capture.wait(STOP_TIMEOUT_S) is None:  # its output ended, yet the program runs on
            self.capture.stop()
        reader.join(timeout=1)
        failure = self.capture.failure()
        drops = self.capture.kernel_drops()
        if not reader.is_alive():
            self.capture.close()
        error = failure or self._reader_error
        if error is not None and not isinstance(error, GwcheckError):
            raise error  # a fault of gwcheck's own, not of the capture
        stopped_by = "capture failed" if error is not None else "capture ended" if ended else self._stop_reason
        details = {
            "interface": self.capture.interface,
            "program": self.capture.program,
            "command": self.capture.command,
            "filter": self.capture.bpf,
            "kernel_drops": drops,
        }
        report = self.analysis.finish() if self._tables else None
        elapsed = stopped_at - started_at if started_at is not None else 0.0
        return LiveResult(report, stopped_by, elapsed, self._packets, error, details)

    def _follow(self) -> tuple[float | None, float, bool]:
        """Feed the analysis and call back until stopped, the duration is up, or the stream ends (then True)."""
        started_at: float | None = None
        next_tick = deadline = float("inf")
        previous: Snapshot | None = None
        while True:
            now = time.monotonic()
            if started_at is None and self._started.is_set():
                started_at = now
                next_tick = now + self.interval_s
                deadline = now + self.duration_s if self.duration_s is not None else float("inf")
                if self.on_start is not None:
                    self.on_start()
            if self._stop.is_set():
                return started_at, now, False
            if now >= deadline:
                self._stop_reason = "duration"
                return started_at, now, False
            if now >= next_tick:
                previous = take_snapshot(self._report_so_far(), previous, now - started_at, self._packets)
                if self.on_interval is not None:
                    self.on_interval(previous)
                next_tick = max(next_tick + self.interval_s, time.monotonic() + self.interval_s / 2)
                continue
            try:
                item = self._queue.get(timeout=max(0.0, min(POLL_S, next_tick - now, deadline - now)))
            except queue.Empty:
                continue
            if self._take(item):
                return started_at, time.monotonic(), True

    def _read(self, stdout: BinaryIO) -> None:
        """On the reader thread: decode the stream into packet tables and queue them; None marks its end."""
        from ..tables.packets import PacketStream

        try:
            for table in PacketStream(_Announcing(stdout, self._started), self.port, self.batch_bytes, self.name, self.tee):
                self._queue.put(table)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which decides
            self._reader_error = exc
        finally:
            self._queue.put(None)

    def _take(self, item) -> bool:
        """Feed one queued table to the analysis; True at the end of the stream."""
        if item is None:
            return True
        self._packets += len(item)
        self._tables += 1
        self.analysis.add(item)
        return False

    def _drain(self) -> None:
        """Take what the reader still queues until the stream ends: the program has ended, so it does."""
        while not self._take(self._queue.get()):
            pass

    def _report_so_far(self) -> Report | None:
        return self.analysis.report() if self._packets else None


class _Announcing:
    """A stream that sets ``started`` when its first bytes arrive: the capture program is capturing."""

    def __init__(self, stream: BinaryIO, started: threading.Event) -> None:
        self.stream, self.started = stream, started

    def read1(self, size: int = -1) -> bytes:
        chunk = self.stream.read1(size)
        if chunk:
            self.started.set()
        return chunk
