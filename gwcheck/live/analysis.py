"""The analysis behind ``gwcheck live``: packet tables go in as they are read, a Report comes out whenever asked."""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from ..decode.geneve import GENEVE_PORT
from ..report.model import Report


class LiveAnalysis(Protocol):
    """What a live session feeds: ``add`` for each packet table read, in capture order; ``report`` at any time.

    Tables have the columns of ``read_packets``; ``attrs["captures"]`` of the latest describes the capture so far.
    """

    def add(self, packets: pd.DataFrame) -> None: ...

    def report(self) -> Report: ...


class AccumulatingAnalysis:
    """Keep every packet table and analyse them all again on each ``report()`` with ``gwcheck.analyze``.

    Exact, and the same Report ``gwcheck analyze`` gives for the capture, but memory grows with the capture and
    each report costs as much as the capture is long: a stand-in until an incremental, bounded-memory analysis.
    ``settings`` are keyword arguments of ``gwcheck.analyze``.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self._packets: pd.DataFrame | None = None
        self._new: list[pd.DataFrame] = []
        self._captures: list[dict] = []
        self._report: Report | None = None

    def add(self, packets: pd.DataFrame) -> None:
        self._captures = packets.attrs.get("captures", self._captures)
        if len(packets) or self._packets is None:
            self._new.append(packets)
        self._report = None

    def report(self) -> Report:
        from ..pipeline import analyze

        if self._report is None:
            if self._new:
                parts = [self._packets, *self._new] if self._packets is not None else self._new
                self._packets = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].copy()
                self._new = []
            if self._packets is None:
                raise ValueError("no packet table added yet")
            self._packets.attrs = {"captures": self._captures, "port": self.settings.get("port", GENEVE_PORT)}
            self._report = analyze(packets=self._packets, **self.settings)
        return self._report
