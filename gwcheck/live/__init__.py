"""``gwcheck live``: capture on an appliance, read the capture as it is written, analyse it, and show it as it happens.

``LiveSession`` joins a ``capture.live.CaptureProcess`` to a ``LiveAnalysis``: any object with ``add(packets)`` for
each packet table read and ``report()`` for the Report so far.  ``AccumulatingAnalysis`` is the exact, unbounded one.
"""

from __future__ import annotations

from .analysis import AccumulatingAnalysis, LiveAnalysis
from .session import LiveResult, LiveSession

__all__ = ["AccumulatingAnalysis", "LiveAnalysis", "LiveResult", "LiveSession"]
