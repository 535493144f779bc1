"""Columns in, DataFrames out: the packet table, and the legs and flows built from it.

Nothing is imported here, so that ``tables.columns`` (numpy only) loads without pandas.
"""
