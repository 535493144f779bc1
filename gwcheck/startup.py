"""A command's first second: read the captures while the modules that analyse them are imported.

In a fresh interpreter, importing pandas, pyarrow and the analysis takes most of a second, and reading and
decoding a million packets takes about half as long again.  The reading runs in C with the GIL released and
needs numpy only (``tables.columns``), so the command line does both at once: the reading on a thread, the
imports on the calling one.  Nothing computed changes: ``analyze_captures`` gives ``pipeline.analyze`` of the
same captures, and a bad setting is still refused before any capture error is reported.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .decode import GENEVE_PORT
from .tables.columns import PacketColumns, PathLike, Progress, read_columns


class CaptureReader(threading.Thread):
    """``read_columns`` of captures on a thread of its own, started at once; ``columns()`` waits for the result.

    Warnings (damage) are issued on the reading thread, under the process's warning filters.
    """

    def __init__(self, captures: PathLike | Iterable[PathLike], port: int = GENEVE_PORT, progress: Progress | None = None) -> None:
        super().__init__(name="read captures", daemon=True)
        self._arguments = (captures, port, progress)
        self._result: PacketColumns | None = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._result = read_columns(*self._arguments)
        except BaseException as error:  # noqa: BLE001 - handed to the caller of columns(), which raises it
            self._error = error

    def columns(self) -> PacketColumns:
        """The columns read; raises what reading raised (``CaptureError`` for an unreadable file)."""
        self.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def analyze_captures(captures: PathLike | Iterable[PathLike], progress: Progress | None = None, port: int = GENEVE_PORT, **settings: object):
    """``pipeline.analyze(captures, port=port, progress=progress, **settings)``, the captures read while the analysis is imported."""
    reader = CaptureReader(captures, port, progress)
    from .pipeline import AnalysisSettings, analyze  # pandas, pyarrow and the analysis: most of a second
    from .tables.packets import packet_table

    AnalysisSettings(port=port, **settings)  # a bad setting is refused before the captures' own errors
    return analyze(packets=packet_table(reader.columns()), port=port, **settings)
