"""The README documents the command line: every subcommand has a section naming every option of its parser
(taken from ``gwcheck.cli.build_parser()``), the setup commands are there, and its examples are true."""

from __future__ import annotations

import argparse
import re
import shlex
from io import StringIO
from pathlib import Path

import pytest

from gwcheck.cli import build_parser, main
from gwcheck.report.validate import CHECKS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL = "python3 -m venv .venv && . .venv/bin/activate && pip install . && gwcheck analyze samples/healthy.pcap"
TEST = ".ci/system-packages && python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[test]' && python -m pytest"


def sections() -> dict[str, str]:
    """README text under each heading (its title without '#'), up to the next heading."""
    parts = re.split(r"^#{1,4} (.*)$", README, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


def command_sections() -> dict[str, str]:
    """The section of each command, from headings such as '### `gwcheck analyze CAPTURE...`'."""
    out = {}
    for title, body in sections().items():
        match = re.fullmatch(r"`gwcheck (\w+)[^`]*`", title)
        if match:
            out[match.group(1)] = body
    return out


def subcommands() -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions if not isinstance(a, argparse._HelpAction) for s in a.option_strings]


def mentions(text: str, option: str) -> bool:
    """``option`` as a word of a code span: `--port N`, `-o FILE`, `--split`, `gwcheck --version`."""
    return re.search(rf"`(?:[^`]*[ ,])?{re.escape(option)}(?:[ =][^`]*)?`", text) is not None


OPTIONS = [(name, option) for name, parser in subcommands().items() for option in option_strings(parser)]


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_command_has_a_section(command: str) -> None:
    assert command in command_sections(), f"README.md has no '### `gwcheck {command} ...`' section"


@pytest.mark.parametrize(("command", "option"), OPTIONS, ids=[f"{c} {o}" for c, o in OPTIONS])
def test_every_option_is_in_its_command_section(command: str, option: str) -> None:
    section = command_sections().get(command, "")
    assert mentions(section, option), f"README.md: the section of gwcheck {command} does not show `{option}`"


def test_top_level_options_are_documented() -> None:
    for option in option_strings(build_parser()):
        assert mentions(README, option), option


def test_every_check_has_its_policy_key_in_the_validate_section() -> None:
    section = command_sections()["validate"]
    for check in CHECKS:
        assert f"`{check.name}`" in section, check.name


@pytest.mark.parametrize("command", [INSTALL, TEST], ids=["install", "test"])
def test_setup_commands_are_shown(command: str) -> None:
    blocks = re.findall(r"^```sh\n(.*?)^```", README, flags=re.M | re.S)
    assert any(line.strip() == command for block in blocks for line in block.splitlines()), command


def test_ci_runs_the_readme_test_command() -> None:
    assert TEST in (ROOT / ".ci" / "run").read_text()
    assert (ROOT / ".ci" / "system-packages").exists() and (ROOT / "samples" / "healthy.pcap").exists()


def test_validate_examples_print_what_the_readme_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ```console block that runs `gwcheck validate` shows its real output."""
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"^```console\n\$ (gwcheck validate .*?)\n(.*?)^```", README, flags=re.M | re.S)
    assert blocks
    for command, shown in blocks:
        out = StringIO()
        main(shlex.split(command)[1:], stdout=out, stderr=StringIO())
        assert out.getvalue() == shown, command


def test_ci_job_runs_validate_with_the_example_policy() -> None:
    [job] = re.findall(r"^```yaml\n(.*?)^```", command_sections()["validate"], flags=re.M | re.S)
    assert "gwcheck validate --policy examples/gwcheck.toml --junit results.xml" in job
    assert "report_paths: results.xml" in job and "pip install ." in job
