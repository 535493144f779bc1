"""Write tables for other tools: Parquet (pyarrow) or CSV."""

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
    plain = table.copy(deep=False)
    plain.attrs = {}  # attrs hold nested descriptions that Parquet metadata need not carry
    plain.to_parquet(path, index=False)


def export_tables(tables: dict[str, pd.DataFrame], directory: str | os.PathLike) -> list[str]:
    """Write each table as ``<name>.parquet`` and ``<name>.csv`` (addresses also as text) in ``directory``."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, table in tables.items():
        for suffix, text in ((".parquet", False), (".csv", True)):
            path = os.path.join(os.fspath(directory), name + suffix)
            write_table(table.reset_index() if table.index.name else table, path, text_addresses=text)
            written.append(path)
    return written
