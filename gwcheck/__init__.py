"""gwcheck: prove an AWS Gateway Load Balancer deployment right from captures on its appliances.

The public API: ``analyze`` (captures -> Report), ``analyze_stream`` (the same in bounded memory),
``IncrementalAnalysis`` (packet tables in as they arrive, a Report whenever asked), ``read_packets``
(captures -> packet DataFrame), ``iter_packet_batches`` (a capture stream -> packet DataFrames as it
arrives), ``vpce_id``.
Heavy modules are imported on first use, so ``import gwcheck`` and ``gwcheck --help`` stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .decode.geneve import vpce_id
    from .incremental import IncrementalAnalysis, analyze_stream
    from .pipeline import analyze
    from .report.model import Report
    from .tables.options import read_options
    from .tables.packets import iter_packet_batches, read_packets

__all__ = [
    "IncrementalAnalysis", "Report", "__version__", "analyze", "analyze_stream", "iter_packet_batches", "read_options",
    "read_packets", "vpce_id",
]

_LAZY = {
    "analyze": ("gwcheck.pipeline", "analyze"),
    "analyze_stream": ("gwcheck.incremental", "analyze_stream"),
    "IncrementalAnalysis": ("gwcheck.incremental", "IncrementalAnalysis"),
    "Report": ("gwcheck.report.model", "Report"),
    "read_packets": ("gwcheck.tables.packets", "read_packets"),
    "read_options": ("gwcheck.tables.options", "read_options"),
    "iter_packet_batches": ("gwcheck.tables.packets", "iter_packet_batches"),
    "vpce_id": ("gwcheck.decode.geneve", "vpce_id"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'gwcheck' has no attribute {name!r}")
