"""Reading captures while the analysis is imported (``gwcheck.startup``): the same Report as ``analyze``, errors and
warnings as before, and a reading layer that loads without pandas."""

from __future__ import annotations

import subprocess
import sys
import warnings
from io import StringIO
from pathlib import Path

import pytest

import gwcheck
from gwcheck.cli import ExitCode, main
from gwcheck.errors import CaptureDamageWarning, CaptureError, ConfigError
from gwcheck.startup import CaptureReader, analyze_captures
from gwcheck.tables.packets import packet_table, read_packets

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def test_reading_needs_no_pandas() -> None:
    code = "import sys, gwcheck.startup, gwcheck.tables.columns; print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("captures", "settings"),
    [
        ([SAMPLES / "healthy.pcap"], {}),
        ([SAMPLES / "drops.pcap"], {"window_s": 0.5, "stickiness": "3-tuple"}),
        (sorted(SAMPLES.glob("split-*.pcapng")), {}),
    ],
    ids=["healthy", "drops-settings", "split-files"],
)
def test_analyze_captures_is_analyze(captures: list[Path], settings: dict) -> None:
    assert analyze_captures(captures, port=6081, **settings).to_dict() == gwcheck.analyze(captures, **settings).to_dict()


def test_the_reader_gives_the_packet_table_read_packets_gives() -> None:
    captures = sorted(SAMPLES.glob("split-*.pcapng"))
    table = packet_table(CaptureReader(captures).columns())
    expected = read_packets(captures)
    assert table.equals(expected) and table.attrs == expected.attrs and list(table.dtypes) == list(expected.dtypes)


def test_the_reader_raises_what_reading_raised(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="missing.pcap"):
        CaptureReader([tmp_path / "missing.pcap"]).columns()


def test_a_bad_setting_is_refused_before_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bogus"):
        analyze_captures([tmp_path / "missing.pcap"], appliances=["bogus"])
    out, err = StringIO(), StringIO()
    assert main(["analyze", "--appliance", "bogus", str(tmp_path / "missing.pcap")], out, err) == ExitCode.USAGE
    assert "bogus" in err.getvalue() and "missing" not in err.getvalue()


def test_damage_read_on_the_thread_is_warned_and_analysed(tmp_path: Path) -> None:
    whole = (SAMPLES / "healthy.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = analyze_captures([cut])
    damage = [w.message for w in caught if isinstance(w.message, CaptureDamageWarning)]
    assert len(damage) == 1 and str(cut) in str(damage[0])
    assert 0 < report.summary["packets"] < len(read_packets(SAMPLES / "healthy.pcap"))
    out, err = StringIO(), StringIO()
    assert main(["analyze", "--quiet", str(cut)], out, err) == ExitCode.OK
    assert err.getvalue().startswith("gwcheck: warning: ") and str(cut) in err.getvalue()
