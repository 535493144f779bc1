"""Text columns made whole by Arrow's kernels: no Python string per row, and no conversion when pandas keeps text in Arrow."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


@cache
def _text_dtype() -> np.dtype | pd.api.extensions.ExtensionDtype:
    """The dtype pandas gives a column of str: Arrow-backed ``str`` since pandas 3, object before."""
    return pd.Series(np.array([""], dtype=object)).dtype


def text_column(values: pa.Array) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """``values`` as pandas would store an object array of the same strings; an empty one stays an empty object array."""
    dtype = _text_dtype()
    if len(values) == 0 or dtype == object:
        return values.to_numpy(zero_copy_only=False)
    return pd.array(values, dtype=dtype)


def take_text(labels: Sequence[str] | np.ndarray | pa.Array, codes: np.ndarray) -> pa.Array:
    """``labels[codes]`` as an Arrow string array: each label made once, copied by index."""
    labels = labels if isinstance(labels, pa.Array) else pa.array(labels, pa.string())
    return pc.take(labels, pa.array(np.asarray(codes, dtype=np.int64)))


def join_text(*parts: pa.Array | str) -> pa.Array:
    """Row by row, the concatenation of ``parts``: string arrays of one length, or literal text."""
    return pc.binary_join_element_wise(*parts, "")
