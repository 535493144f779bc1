"""Golden outputs: `gwcheck analyze` on every sample, as text and as JSON, must not change unnoticed.

After a deliberate change to the analysis or the reports, regenerate with
``GWCHECK_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and review the diff of tests/golden/.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from gwcheck.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
SAMPLES = {
    "healthy": ["samples/healthy.pcap"],
    "asymmetric": ["samples/asymmetric.pcap"],
    "stale-cookie": ["samples/stale-cookie.pcap"],
    "drops": ["samples/drops.pcap"],
    "uneven": ["samples/uneven.pcap"],
    "mtu": ["samples/mtu.pcap"],
    "health": ["samples/health.pcap"],
    "split": ["samples/split-appliance1.pcapng", "samples/split-appliance2.pcapng", "samples/split-appliance3.pcapng"],
}
REGENERATE = os.environ.get("GWCHECK_REGENERATE_GOLDEN") == "1"


def analyze(captures: list[str], *options: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)  # paths in the report are the ones given, relative to the repository
    try:
        main(["analyze", *captures, *options], stdout=out, stderr=err)
    finally:
        os.chdir(cwd)
    assert err.getvalue() == ""
    return out.getvalue()


def check(name: str, actual: str) -> None:
    path = GOLDEN / name
    if REGENERATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"{path} is missing: regenerate with GWCHECK_REGENERATE_GOLDEN=1"
    assert actual == path.read_text(), f"{name} differs from its golden file; if the change is meant, regenerate"


@pytest.mark.parametrize("sample", SAMPLES)
def test_text_report(sample: str) -> None:
    check(f"{sample}.txt", analyze(SAMPLES[sample], "--verbose"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_json_report(sample: str) -> None:
    text = analyze(SAMPLES[sample], "--format", "json")
    document = json.loads(text)
    document.pop("gwcheck_version")  # a release changes it, the analysis does not
    check(f"{sample}.json", json.dumps(document, indent=1, sort_keys=True) + "\n")
