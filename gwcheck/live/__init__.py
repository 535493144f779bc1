"""``gwcheck live``: capture on an appliance, read the capture as it is written, analyse it, and show it as it happens.

``LiveSession`` joins a ``capture.live.CaptureProcess`` to a ``LiveAnalysis``: any object with ``add(packets)`` for
each packet table read, ``report()`` for the Report so far and ``finish()`` for the final one
(``gwcheck.incremental.IncrementalAnalysis``, in bounded memory).
"""

from __future__ import annotations

from .analysis import LiveAnalysis
from .session import LiveResult, LiveSession

__all__ = ["LiveAnalysis", "LiveResult", "LiveSession"]
