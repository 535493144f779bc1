"""gwcheck: prove an AWS Gateway Load Balancer deployment right from captures on its appliances.

The public API: ``read_packets`` (captures -> packet DataFrame), ``vpce_id`` and the address helpers.
Heavy modules are imported on first use, so ``import gwcheck`` and ``gwcheck --help`` stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .decode.geneve import vpce_id
    from .tables.packets import read_packets

__all__ = ["__version__", "read_packets", "vpce_id"]

_LAZY = {
    "read_packets": ("gwcheck.tables.packets", "read_packets"),
    "vpce_id": ("gwcheck.decode.geneve", "vpce_id"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'gwcheck' has no attribute {name!r}")
