"""The columnar decoder's layout: one C pass over a file's records (``_decode.decode_records``) fills every column of the packet table.

Layers are decoded by the C headers beside this module (``link.h``, ``ip.h``, ``transport.h``, ``geneve.h``,
``digest.h``, the C halves of the Python modules of the same names); ``_decode.c`` walks the records, maps
each layer's outcome to a ``DecodeStatus`` and stores the fields.  A packet that stops early keeps what was
decoded before the stop and gets the status of the layer that stopped it; every other column of its row is
0.  This module holds the column layout the C code writes (``ROWS``) and checks at import that the built
extension agrees with it and with the schema's codes.
"""

from __future__ import annotations

import numpy as np

from ..schema import COLUMN_DTYPES, DECODER_COLUMNS, RECORD_COLUMNS, DecodeStatus, PacketKind
from . import _decode

#: The columns the kernel fills (all but the capture layer's).  They live as rows of one matrix per
#: storage width, u8 (bool too), u16, u32 and u64, so that the kernel writes straight into the final
#: columns: no per-batch copy, and only four arrays to pass.
DECODED_COLUMNS: tuple[str, ...] = tuple(name for name in DECODER_COLUMNS if name not in RECORD_COLUMNS)
STORAGE = {"uint8": "u8", "bool": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64"}
STORAGE_DTYPES = {"u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64}


def _rows() -> dict[str, tuple[str, int]]:
    rows: dict[str, tuple[str, int]] = {}
    used = dict.fromkeys(STORAGE_DTYPES, 0)
    for name in DECODED_COLUMNS:
        group = STORAGE[str(COLUMN_DTYPES[name])]
        rows[name] = (group, used[group])
        used[group] += 1
    return rows


#: column name -> (matrix, row)
ROWS: dict[str, tuple[str, int]] = _rows()
ROW_COUNTS: dict[str, int] = {g: sum(1 for m, _ in ROWS.values() if m == g) for g in STORAGE_DTYPES}
#: The C kernel: ``decode_records(data, frame_offset, cap_len, wire_len, link_type, u8, u16, u32, u64, port,
#: first, last, column)`` decodes records [first, last) into matrix columns [column + first, column + last),
#: writing every column of those rows; it releases the GIL while it runs.
decode_records = _decode.decode_records


def _check_extension() -> None:
    """Refuse an extension built for another column layout or other status/kind codes (a stale build)."""
    problems = []
    if _decode.ROWS != ROWS:
        problems.append("column layout")
    if _decode.STATUS != {s.name: int(s) for s in DecodeStatus}:
        problems.append("DecodeStatus codes")
    if _decode.KIND != {k.name: int(k) for k in PacketKind}:
        problems.append("PacketKind codes")
    if problems:
        raise ImportError(
            f"gwcheck.decode._decode ({_decode.__file__}) disagrees with gwcheck.schema on the {' and '.join(problems)}: "
            "rebuild it (pip install -e .) or update _decode.c"
        )


_check_extension()
