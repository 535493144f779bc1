"""What a live session feeds: any analysis that takes packet tables as they are read and reports whenever asked."""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from ..report.model import Report


class LiveAnalysis(Protocol):
    """``add`` for each packet table read, in capture order; ``report`` at any time; ``finish`` once, at the end.

    Tables have the columns of ``read_packets``; ``attrs["captures"]`` of the latest describes the capture so far.
    ``gwcheck.incremental.IncrementalAnalysis`` is the one gwcheck uses: bounded memory, however long the capture.
    """

    def add(self, packets: pd.DataFrame) -> None: ...

    def report(self) -> Report: ...

    def finish(self) -> Report: ...
