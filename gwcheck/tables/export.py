"""Write tables for other tools: Parquet (pyarrow, the ``parquet`` extra) or CSV."""

from __future__ import annotations

import os

import pandas as pd

from ..addresses import format_addresses
from ..errors import ConfigError

ADDRESS_PREFIXES = ("outer_src", "outer_dst", "inner_src", "inner_dst")


def with_text_addresses(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` with each hi/lo address pair also rendered as text (``outer_src`` ...)."""
    out = table.copy(deep=False)
    for prefix in ADDRESS_PREFIXES:
        if f"{prefix}_hi" in table:
            out[prefix] = format_addresses(table[f"{prefix}_hi"].to_numpy(), table[f"{prefix}_lo"].to_numpy())
    return out


def write_table(table: pd.DataFrame, path: str | os.PathLike, text_addresses: bool = False) -> None:
    """Write ``table`` to ``path``; the suffix (.parquet or .csv) chooses the format."""
    path = os.fspath(path)
    if text_addresses:
        table = with_text_addresses(table)
    if path.endswith(".csv"):
        table.to_csv(path, index=False)
        return
    if not path.endswith(".parquet"):
        raise ConfigError(f"{path}: unknown table format; use .parquet or .csv")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("Parquet needs pyarrow: pip install 'gwcheck[parquet]', or write .csv") from None
    plain = table.copy(deep=False)
    plain.attrs = {}  # attrs hold nested descriptions that Parquet metadata need not carry
    plain.to_parquet(path, index=False)
