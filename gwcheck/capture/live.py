"""Live capture: tcpdump, or Wireshark's dumpcap as pyshark's LiveCapture runs it, writing the packets of one interface
to its standard output as a capture stream (pcap from tcpdump, pcapng from dumpcap) for ``capture.stream``.

The program runs in its own session, so that a Ctrl-C meant for gwcheck reaches gwcheck alone; ``stop`` ends it with
SIGTERM, on which both programs write out what they hold and exit, and the rest of the stream can still be read.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import threading
from typing import BinaryIO

from ..errors import LiveCaptureError

BACKENDS = ("tcpdump", "pyshark")
STOP_TIMEOUT_S = 5.0  # after SIGTERM, before SIGKILL
BUFFER_MIB = 32  # the kernel's capture buffer
STDERR_LINES = 40  # the last lines of the program's standard error kept for messages
# Lines the programs write when all is well: not shown as the reason of a failure.
_INFO_LINES = re.compile(
    r"listening on|packets? captured|received by filter|dropped by kernel|^capturing on|^file: |^packets: |received/dropped on interface",
    re.IGNORECASE,
)
_NO_INTERFACE = re.compile(r"no such device|no device named|doesn't exist|does not exist|no such interface", re.IGNORECASE)
_NO_PERMISSION = re.compile(r"permission|not permitted", re.IGNORECASE)
_TCPDUMP_DROPS = re.compile(r"(\d+) packets? dropped by kernel")
_DUMPCAP_DROPS = re.compile(r"received/dropped on interface .*: (\d+)/(\d+)")


def capture_filter(port: int, health_check_port: int | None = None) -> str:
    """The capture filter: Geneve on ``port`` and the health checks on TCP ``health_check_port``, VLAN-tagged too
    (shared/docs/gwlb.md).  The ``vlan`` term comes last: BPF reads every term after it 4 bytes further on."""
    plain = f"udp port {port}" + (f" or tcp port {health_check_port}" if health_check_port else "")
    return f"{plain} or (vlan and ({plain}))"


class CaptureProcess:
    """A capture program writing the packets of ``interface`` that match ``bpf`` to its standard output."""

    def __init__(self, interface: str, bpf: str, backend: str = "tcpdump") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.interface, self.bpf, self.backend = interface, bpf, backend
        self.command: list[str] = []
        self.stopped = False  # stop() was called: the program did not end on its own
        self._process: subprocess.Popen | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_reader: threading.Thread | None = None

    @property
    def program(self) -> str:
        return "tcpdump" if self.backend == "tcpdump" else "dumpcap"

    def start(self) -> BinaryIO:
        """Start the program; return its standard output. Raises ``LiveCaptureError`` when it cannot be run."""
        self.command = self._command()
        try:
            self._process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
            )
        except OSError as exc:
            raise LiveCaptureError(f"cannot run {self.command[0]}: {exc.strerror or exc}") from None
        self._stderr_reader = threading.Thread(target=self._collect_stderr, name=f"{self.program} stderr", daemon=True)
        self._stderr_reader.start()
        return self._process.stdout  # type: ignore[return-value]

    def _command(self) -> list[str]:
        if self.backend == "tcpdump":
            program = shutil.which("tcpdump")
            if program is None:
                raise LiveCaptureError("tcpdump not found on PATH: install it (Debian, Ubuntu: apt-get install tcpdump) or use --backend pyshark")
            # -U: write each packet out as it comes; --immediate-mode: hand each packet over at once, so that none
            # waits in a half-filled kernel block when the capture stops; -B: room for bursts (the ring's frames
            # are 64 KiB each, so the default 2 MiB holds only 32 packets).
            return [program, "-i", self.interface, "-U", "--immediate-mode", "-B", str(BUFFER_MIB * 1024), "-w", "-", self.bpf]
        # What pyshark's LiveCapture runs (pyshark.capture.live_capture), with a larger buffer.
        return [_dumpcap_path(), "-q", "-i", self.interface, "-f", self.bpf, "-B", str(BUFFER_MIB), "-w", "-"]

    def _collect_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for raw in self._process.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._stderr.append(line)

    def stop(self) -> None:
        """End the program with SIGTERM (SIGKILL if it lingers); what it wrote before stays readable."""
        if self._process is None or self._process.poll() is not None:
            return
        self.stopped = True
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self._process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def close(self) -> None:
        """Release the pipes once the program has ended and its output has been read."""
        if self._process is None or self._process.poll() is None:
            return
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=2)
        for pipe in (self._process.stdout, self._process.stderr):
            if pipe is not None:
                pipe.close()

    def wait(self, timeout: float | None = None) -> int | None:
        """The program's exit status once it has ended (None when it is still running after ``timeout``)."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr_lines(self) -> list[str]:
        """The last lines of the program's standard error (all of them once it has ended)."""
        if self._stderr_reader is not None and self._process is not None and self._process.poll() is not None:
            self._stderr_reader.join(timeout=2)
        return list(self._stderr)

    def failure(self) -> LiveCaptureError | None:
        """Why the program ended on its own with an error: None while it runs, when it was stopped, or when it exited 0."""
        status = self.wait(0) if self._process is not None else None
        if status is None or self.stopped or status == 0:
            return None
        lines = self.stderr_lines()
        return LiveCaptureError(diagnose(self.program, self.command[0], self.interface, status, lines), "\n".join(lines))

    def kernel_drops(self) -> int | None:
        """Packets the kernel dropped before the program could read them, as it reports on exit (None when it did not)."""
        for line in reversed(self.stderr_lines()):
            if match := _TCPDUMP_DROPS.search(line):
                return int(match.group(1))
            if match := _DUMPCAP_DROPS.search(line):
                return int(match.group(2))
        return None


def diagnose(program: str, path: str, interface: str, status: int, stderr: list[str]) -> str:
    """One line saying why a capture program failed, from its exit status and standard error."""
    problems = [line for line in stderr if not _INFO_LINES.search(line)] or stderr
    text = "\n".join(problems)
    said = "; ".join(problems) or "no message"
    quoted = said if said.startswith(f"{program}:") else f"{program}: {said}"
    if _NO_INTERFACE.search(text):
        return f"no such interface: {interface} ({quoted})"
    if _NO_PERMISSION.search(text):
        return (
            f"not permitted to capture on {interface}: run gwcheck live as root, or give {program} the capabilities "
            f"to capture (setcap cap_net_raw,cap_net_admin=eip {path}) ({quoted})"
        )
    ended = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
    return f"{program} {ended}: {said}"


def _dumpcap_path() -> str:
    """Wireshark's dumpcap, found as pyshark finds it (its config.ini, then PATH), or on PATH without pyshark."""
    try:
        from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path
    except ImportError:
        path = shutil.which("dumpcap")
    else:
        try:
            path = get_process_path(process_name="dumpcap")
        except TSharkNotFoundException:
            path = None
    if path is None:
        raise LiveCaptureError("dumpcap (Wireshark) not found: install it (Debian, Ubuntu: apt-get install tshark) or use --backend tcpdump")
    return path
