"""Validation results as JUnit XML, the test-report format CI servers read (Jenkins, GitLab, GitHub Actions reporters).

One ``<testsuite name="gwcheck">`` inside ``<testsuites>``, one ``<testcase>`` per check; a failed check has a
``<failure message="measured ..., threshold ...">`` with its detail as text. Built with ElementTree, so the
output is well-formed whatever the flow keys and file names hold.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import TextIO

from .validate import CheckResult

SUITE = "gwcheck"
CLASSNAME = "gwcheck.validate"


def junit_tree(results: list[CheckResult], properties: Mapping[str, str] | None = None, time_s: float = 0.0) -> ET.Element:
    """The ``<testsuites>`` element of ``results``; ``properties`` (e.g. the captures) go on the suite."""
    failures = sum(1 for r in results if not r.passed)
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0", "skipped": "0", "time": f"{time_s:.3f}"}
    root = ET.Element("testsuites", {"name": SUITE, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE, **counts})
    if properties:
        props = ET.SubElement(suite, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", {"name": name, "value": str(value)})
    for result in results:
        case = ET.SubElement(suite, "testcase", {"classname": CLASSNAME, "name": result.name, "time": "0"})
        summary = f"measured {result.measured}, threshold {result.threshold}"
        if not result.passed:
            failure = ET.SubElement(case, "failure", {"message": summary, "type": "CheckFailed"})
            failure.text = result.detail or summary
        ET.SubElement(case, "system-out").text = summary + (f"\n{result.detail}" if result.detail else "")
    ET.indent(root)
    return root


def write_junit(results: list[CheckResult], stream: TextIO, properties: Mapping[str, str] | None = None, time_s: float = 0.0) -> None:
    """Write ``results`` as a UTF-8 JUnit XML document to ``stream`` (open it with encoding="utf-8")."""
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(junit_tree(results, properties, time_s), encoding="unicode"))
    stream.write("\n")
