"""The analysis of ``gwcheck.analyze`` on a Dask cluster (``gwcheck analyze --dask``): Dask is imported only when used."""

from __future__ import annotations

from .inputs import expand_captures
from .run import analyze_on_dask

__all__ = ["analyze_on_dask", "expand_captures"]
