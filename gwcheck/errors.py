"""The typed errors and warnings of gwcheck: the library raises these and never prints."""

from __future__ import annotations


class GwcheckError(Exception):
    """Base of every error gwcheck raises on purpose."""


class CaptureError(GwcheckError):
    """A capture file cannot be read at all."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = str(path)
        self.offset = int(offset)
        self.reason = reason
        super().__init__(f"{self.path}: at byte {self.offset}: {reason}")


class NotACaptureError(CaptureError):
    """The file starts with no pcap, pcapng or gzip magic number."""


class DecodeError(GwcheckError):
    """A packet cannot be decoded (raised only in strict mode; bulk decoding records a status)."""


class TruncatedError(DecodeError):
    """A packet ends before a header it announces: 'got N bytes, need M'."""


class MalformedError(DecodeError):
    """A packet has all its bytes but a field that cannot be right."""


class LiveCaptureError(GwcheckError):
    """A live capture cannot start (no capture program, no permission, no such interface) or its program died."""

    def __init__(self, message: str, stderr: str = "") -> None:
        self.stderr = stderr  # what the capture program wrote to its standard error, when it ran
        super().__init__(message)


class ConfigError(GwcheckError):
    """A setting given to gwcheck is out of range or inconsistent."""


class DaskUnavailableError(ConfigError):
    """Dask was asked for (``--dask``) but is not installed: ``pip install 'gwcheck[dask]'``."""


class ClusterError(GwcheckError):
    """The Dask cluster cannot be reached or cannot run gwcheck, or a stage of the analysis failed on it."""


class CaptureDamageWarning(UserWarning):
    """A capture is damaged part way: every record before the damage was read."""

    def __init__(self, path: str, offset: int, reason: str, records_read: int) -> None:
        self.path = str(path)
        self.offset = int(offset)
        self.reason = reason
        self.records_read = int(records_read)
        super().__init__(
            f"{self.path}: damaged at byte {self.offset}: {reason}; "
            f"kept the {self.records_read} records before it"
        )


class CaptureSkippedWarning(UserWarning):
    """A capture could not be read at all and was left out of an analysis of several files (``gwcheck analyze --dask``)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot be read, left out of the analysis: {reason}")
