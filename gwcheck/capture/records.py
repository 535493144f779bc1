"""What the capture layer hands on: the record columns of one file, its interfaces and any damage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Interface:
    """One capture interface: pcap has one, pcapng one per Interface Description Block."""

    index: int  # across the whole file (pcapng numbers restart per section; this does not)
    link_type: int
    snaplen: int
    name: str = ""
    section: int = 0
    ts_resolution: str = "us"


@dataclass(frozen=True)
class Damage:
    """Where a file stops being readable, and why."""

    offset: int
    reason: str


@dataclass
class RecordIndex:
    """The records of one capture file as columns (``schema.RECORD_COLUMNS``) over its bytes."""

    path: str
    format: str  # "pcap", "pcap-ns", "pcapng", each with "+gzip" when compressed
    data: np.ndarray  # uint8: the whole file, frames are data[frame_offset : frame_offset + cap_len_bytes]
    columns: dict[str, np.ndarray]
    interfaces: list[Interface]
    damage: Damage | None = None
    _keepalive: object = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.columns["ts_ns"])
