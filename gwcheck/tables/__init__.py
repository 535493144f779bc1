"""Columns in, DataFrames out: the packet table, and later the legs and flows built from it."""

from .packets import read_packets

__all__ = ["read_packets"]
