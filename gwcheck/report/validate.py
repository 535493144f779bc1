"""Validation: checks of a Report against a policy of thresholds, each passing or failing with the value measured.

``run_checks(report, policy)`` is a pure function of the Report. A policy is a TOML file (``load_policy``) or a
mapping (``parse_policy``) whose keys are the check names, e.g. ``max_latency_p99 = "2ms"``, plus an optional
``[analysis]`` table of the settings ``gwcheck analyze`` takes (window, stickiness, timeouts, roles, port).
A check runs only when the policy sets it. Bad policies raise ``ConfigError``; nothing here prints.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..analysis.findings import Finding
    from .model import Report

#: Microseconds per unit of a duration: "500us", "2ms", "0.5s".
US_PER_UNIT = {"us": 1.0, "µs": 1.0, "ms": 1e3, "s": 1e6}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s)\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(%?)\s*$")
EXAMPLE_KEYS = 3

#: Keys of a policy's [analysis] table (the option names of ``gwcheck analyze``) and the ``analyze()`` argument of each.
ANALYSIS_KEYS = {
    "port": "port",
    "appliance": "appliances",
    "gwlb": "gwlb_nodes",
    "window": "window_s",
    "stickiness": "stickiness",
    "tcp_idle_timeout": "tcp_idle_timeout_s",
    "udp_idle_timeout": "udp_idle_timeout_s",
}
#: Checks whose limit also steers the analysis (the findings "missing_appliances" and "uneven_load").
ANALYSIS_CHECKS = {"expect_appliances": "expect_appliances", "max_imbalance": "max_imbalance"}


# --- units ------------------------------------------------------------------------------------------------


def parse_duration_us(value: object) -> float:
    """``"500us"``, ``"2ms"``, ``"0.5s"`` -> microseconds. A bare number is refused: its unit would be a guess."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"expected a duration with a unit (us, ms or s) such as 500us, 2ms or 0.5s, got {value!r}")
    return float(match.group(1)) * US_PER_UNIT[match.group(2)]


def parse_rate(value: object) -> float:
    """``"0.1%"`` or a fraction (``0.001``, ``"0.001"``) -> a fraction from 0 to 1."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        rate = float(value)
    else:
        match = _RATE.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(f"expected a percentage such as 0.1% or a fraction such as 0.001, got {value!r}")
        rate = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"a rate must lie between 0 and 1 (0% and 100%), got {value!r}")
    return rate


def parse_count(value: object) -> int:
    """A whole number, zero or more (``5`` or ``"5"``)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"expected a whole number, zero or more, got {value!r}")


def parse_ratio(value: object) -> float:
    """A positive number (``1.5`` or ``"1.5"``)."""
    try:
        ratio = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    except ValueError:
        ratio = math.nan
    if not ratio > 0 or math.isinf(ratio):
        raise ConfigError(f"expected a positive number, got {value!r}")
    return ratio


def parse_flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value


def parse_seconds(value: object) -> float:
    """Seconds, as a number (like the command line's SECONDS) or a duration with a unit."""
    if isinstance(value, str):
        return parse_duration_us(value) / US_PER_UNIT["s"]
    return parse_ratio(value)


def format_duration_us(us: float) -> str:
    for unit in ("s", "ms"):
        if us >= US_PER_UNIT[unit]:
            return f"{us / US_PER_UNIT[unit]:.4g} {unit}"
    return f"{us:.4g} us"


def format_rate(rate: float) -> str:
    return f"{rate * 100:.3g}%"


# --- checks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """What a check measured: the number compared with the limit (None when nothing could be measured) and its text."""

    value: float | int | None
    text: str
    detail: str = ""


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: the measured value beside the threshold."""

    name: str
    passed: bool
    measured: str  # the measured value, with its unit
    threshold: str  # the limit, with its comparison: "<= 2 ms", ">= 3", "none"
    detail: str = ""  # where: per appliance, example flows
    value: float | int | None = None
    limit: float | int | bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: How each kind of limit is read, compared and shown.
@dataclass(frozen=True)
class Kind:
    parse: Callable[[object], Any]
    metavar: str
    compare: str  # "max": value <= limit; "min": value >= limit; "none": value == 0
    show: Callable[[Any], str] = str


KINDS = {
    "duration": Kind(parse_duration_us, "DURATION", "max", format_duration_us),
    "rate": Kind(parse_rate, "RATE", "max", format_rate),
    "ratio": Kind(parse_ratio, "RATIO", "max", lambda r: f"{r:g}"),
    "max_count": Kind(parse_count, "N", "max"),
    "min_count": Kind(parse_count, "N", "min"),
    "flag": Kind(parse_flag, "", "none"),
}


@dataclass(frozen=True)
class Check:
    """A check: its policy key (the option is ``--`` and the key with dashes), what it limits, and how it measures."""

    name: str
    kind: str
    help: str
    measure: Callable[[Report], Measurement]

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: object) -> Any:
        return KINDS[self.kind].parse(value)

    def threshold(self, limit: Any) -> str:
        kind = KINDS[self.kind]
        return {"max": f"<= {kind.show(limit)}", "min": f">= {kind.show(limit)}", "none": "none"}[kind.compare]

    def evaluate(self, report: Report, limit: Any) -> CheckResult:
        got = self.measure(report)
        compare = KINDS[self.kind].compare
        if got.value is None:
            passed = False  # nothing to measure: the check cannot be shown to hold
        elif compare == "max":
            passed = got.value <= limit
        elif compare == "min":
            passed = got.value >= limit
        else:
            passed = got.value == 0
        return CheckResult(self.name, bool(passed), got.text, self.threshold(limit), got.detail, got.value, limit)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _finding(report: Report, kind: str) -> Finding | None:
    return next((f for f in report.findings if f.kind == kind), None)


def _latency(stat: str) -> Callable[[Report], Measurement]:
    def measure(report: Report) -> Measurement:
        overall = report.latency["overall"]
        if not overall.get("count"):
            return Measurement(None, "no returned packets")
        spread = ", ".join(f"{key} {format_duration_us(overall[key])}" for key in ("p50", "p99", "max"))
        return Measurement(overall[stat], format_duration_us(overall[stat]), f"{_plural(overall['count'], 'returned packet')}: {spread}")

    return measure


def _appliance_latency_p99(report: Report) -> Measurement:
    p99 = {name: s["p99"] for name, s in report.latency["by_appliance"].items() if s.get("count")}
    if not p99:
        return Measurement(None, "no returned packets")
    worst = max(p99, key=p99.get)
    detail = ", ".join(f"{name} {format_duration_us(value)}" for name, value in p99.items())
    return Measurement(p99[worst], f"{format_duration_us(p99[worst])} on {worst}", detail)


def _not_returned(report: Report) -> Measurement:
    table = report.appliances
    lost = int(table["not_returned"].sum()) if len(table) else 0
    total = lost + (int(table["returned"].sum()) if len(table) else 0)
    if not total:
        return Measurement(None, "no packets went into an appliance")
    per_appliance = ", ".join(f"{name} {int(row['not_returned'])}" for name, row in table.iterrows() if row["not_returned"])
    detail = f"not returned: {per_appliance}" if per_appliance else ""
    return Measurement(lost / total, f"{format_rate(lost / total)} ({lost:,} of {total:,} packets)", detail)


def _appliances(report: Report) -> Measurement:
    names = list(report.appliances.index)
    return Measurement(len(names), _plural(len(names), "appliance"), ", ".join(map(str, names)))


def _imbalance(report: Report) -> Measurement:
    ratio = report.distribution["appliances"]["flows"]["max_mean_ratio"]
    if ratio is None:
        return Measurement(None, "no flows")
    flows = ", ".join(f"{name} {int(n)}" for name, n in report.appliances["flows"].items())
    return Measurement(ratio, f"{ratio:.2f} max/mean flows", f"flows per appliance: {flows}")


def _flows(report: Report) -> Measurement:
    kinds = ", ".join(f"{k} {v:,}" for k, v in report.summary["by_kind"].items())
    return Measurement(len(report.flows), _plural(len(report.flows), "flow"), f"{_plural(report.summary['packets'], 'packet')}: {kinds}")


def _unsymmetric_flows(report: Report) -> Measurement:
    verdicts = report.flows["verdict"].value_counts() if len(report.flows) else {}
    faulty = {k: int(v) for k, v in dict(verdicts).items() if k != "symmetric"}
    count = sum(faulty.values())
    detail = "flows by verdict: " + ", ".join(f"{k} {v}" for k, v in faulty.items()) if faulty else ""
    return Measurement(count, f"{count:,} of {_plural(len(report.flows), 'flow')} not symmetric", detail)


def _fault(kind: str) -> Callable[[Report], Measurement]:
    """The flows behind one kind of flow finding of the analysis."""

    def measure(report: Report) -> Measurement:
        finding = _finding(report, kind)
        if finding is None:
            return Measurement(0, "0 flows")
        examples = finding.flow_keys[:EXAMPLE_KEYS]
        more = f", ... {len(finding.flow_keys) - len(examples)} more" if len(finding.flow_keys) > len(examples) else ""
        detail = finding.message + (f"; e.g. {', '.join(examples)}{more}" if examples else "")
        return Measurement(finding.count, _plural(finding.count, "flow"), detail)

    return measure


def _failed_health_checks(report: Report) -> Measurement:
    health = report.appliance_health
    probes = int(health["probes"].sum()) if len(health) else 0
    if not probes:
        return Measurement(0, "no health checks in the captures")
    failed = int(health["failed"].sum())
    detail = "failed probes: " + ", ".join(f"{name} {int(row['failed'])} of {int(row['probes'])}" for name, row in health.iterrows() if row["failed"])
    return Measurement(failed, f"{failed:,} of {_plural(probes, 'probe')} failed", detail)


def _decode_errors(report: Report) -> Measurement:
    statuses = {k: v for k, v in report.summary["by_status"].items() if k != "ok"}
    count = sum(statuses.values())
    return Measurement(count, _plural(count, "packet"), "by status: " + ", ".join(f"{k} {v}" for k, v in statuses.items()) if statuses else "")


def _shape_deviations(report: Report) -> Measurement:
    """Geneve packets decoded whole that differ from GWLB's shape (a packet cut short is a decode error instead)."""
    shape = report.summary["gwlb_shape_decoded"]
    flags = {k: v for k, v in shape.items() if k not in ("exact", "deviating")}
    count = shape["deviating"]
    return Measurement(count, _plural(count, "packet"), ", ".join(f"{k} {v}" for k, v in flags.items() if v))


def _damaged_files(report: Report) -> Measurement:
    damaged = [f for f in report.summary["files"] if f.get("damage")]
    detail = "; ".join(f"{f['path']} at byte {f['damage']['offset']}: {f['damage']['reason']}" for f in damaged)
    return Measurement(len(damaged), _plural(len(damaged), "file"), detail)


def _problems(report: Report) -> Measurement:
    problems = [f for f in report.findings if f.severity in ("error", "warning")]
    return Measurement(len(problems), _plural(len(problems), "error or warning finding"), report.verdict)


#: Every check, in the order they run and are shown.
CHECKS: tuple[Check, ...] = (
    Check("min_flows", "min_count", "fewest flows the captures must hold (guards against empty or wrong captures)", _flows),
    Check("expect_appliances", "min_count", "fewest appliances that must carry traffic", _appliances),
    Check("max_latency_p50", "duration", "highest median appliance dwell time over all appliances, e.g. 200us", _latency("p50")),
    Check("max_latency_p99", "duration", "highest 99th percentile appliance dwell time over all appliances, e.g. 2ms", _latency("p99")),
    Check("max_appliance_latency_p99", "duration", "highest 99th percentile dwell time of any one appliance, e.g. 5ms", _appliance_latency_p99),
    Check("max_not_returned", "rate", "highest share of packets that went into an appliance and never came back, e.g. 0.1%", _not_returned),
    Check("max_imbalance", "ratio", "highest max/mean ratio of flows per appliance, e.g. 1.5", _imbalance),
    Check("require_symmetric", "flag", "every flow symmetric: no flow with any fault", _unsymmetric_flows),
    Check("no_asymmetric", "flag", "no flow whose directions crossed different appliances or endpoints", _fault("asymmetric")),
    Check("no_one_sided", "flag", "no flow with only one direction through an appliance", _fault("one_sided")),
    Check("no_originated", "flag", "no flow originated by an appliance", _fault("originated")),
    Check("no_stale_cookies", "flag", "no flow answered with an older flow's cookie", _fault("stale_cookie")),
    Check("no_wrong_cookies", "flag", "no flow answered with a cookie GWLB never sent it", _fault("wrong_cookie")),
    Check("no_modified_options", "flag", "no flow returned with changed GWLB options", _fault("modified_options")),
    Check("no_over_mtu", "flag", "no flow with inner packets over 8,500 bytes", _fault("over_mtu")),
    Check("no_outer_fragments", "flag", "no flow returned as outer IP fragments", _fault("outer_fragments")),
    Check("max_moved", "max_count", "most flows that may move to another appliance part way", _fault("moved")),
    Check("max_idle_gaps", "max_count", "most flows that may go silent past the idle timeout and come back as new flows", _fault("idle_gap")),
    Check("require_healthy_targets", "flag", "no failed health check (passes when the captures hold none)", _failed_health_checks),
    Check("max_decode_errors", "max_count", "most packets that may fail to decode fully", _decode_errors),
    Check("no_shape_deviations", "flag", "no Geneve packet that differs from the shape GWLB sends", _shape_deviations),
    Check("no_damaged_captures", "flag", "no capture file cut short or damaged", _damaged_files),
    Check("require_healthy", "flag", "the analysis verdict is healthy: no error or warning finding at all", _problems),
)
CHECKS_BY_NAME = {check.name: check for check in CHECKS}


# --- policies ---------------------------------------------------------------------------------------------


@dataclass
class Policy:
    """The checks to run with their limits (parsed values), and the ``analyze()`` settings to run them on."""

    checks: dict[str, Any] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)  # keys of ANALYSIS_KEYS

    def updated(self, other: Policy) -> Policy:
        """This policy with ``other``'s settings in place of its own (command-line options over a file)."""
        return Policy({**self.checks, **other.checks}, {**self.analysis, **other.analysis})

    def without(self, names: set[str]) -> Policy:
        return Policy({k: v for k, v in self.checks.items() if k not in names}, dict(self.analysis))

    def analyze_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``gwcheck.analyze`` this policy sets."""
        out = {ANALYSIS_KEYS[k]: v for k, v in self.analysis.items()}
        out.update({ANALYSIS_CHECKS[k]: v for k, v in self.checks.items() if k in ANALYSIS_CHECKS})
        return out


def _unknown(key: str, known: Mapping | set, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(sorted(known))}"
    return ConfigError(f"{where}: unknown key {key!r}{hint}")


def _addresses(value: object) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"expected an address or a list of addresses, got {value!r}")
    return list(values)


def _port(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 0xFFFF:
        return value
    raise ConfigError(f"expected a UDP port number 1-65535, got {value!r}")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected text, got {value!r}")
    return value


_ANALYSIS_PARSERS: dict[str, Callable[[object], Any]] = {
    "port": _port,
    "appliance": _addresses,
    "gwlb": _addresses,
    "window": parse_seconds,
    "stickiness": _text,
    "tcp_idle_timeout": parse_seconds,
    "udp_idle_timeout": parse_seconds,
}


def parse_policy(document: Mapping[str, Any], source: str = "policy") -> Policy:
    """A policy from a mapping (a parsed TOML file): check names to limits, and an optional ``analysis`` table.

    A flag set to false turns its check off. Raises ``ConfigError`` naming ``source`` and the key.
    """
    policy = Policy()
    for key, value in document.items():
        if key == "analysis":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [analysis] must be a table of settings")
            for name, setting in value.items():
                if name not in _ANALYSIS_PARSERS:
                    raise _unknown(name, _ANALYSIS_PARSERS, f"{source}: [analysis]")
                policy.analysis[name] = _parsed(_ANALYSIS_PARSERS[name], setting, f"{source}: [analysis] {name}")
            continue
        check = CHECKS_BY_NAME.get(key)
        if check is None:
            raise _unknown(key, set(CHECKS_BY_NAME) | {"analysis"}, source)
        limit = _parsed(check.parse, value, f"{source}: {key}")
        if limit is not False:
            policy.checks[key] = limit
    return policy


def _parsed(parse: Callable[[object], Any], value: object, where: str) -> Any:
    try:
        return parse(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_policy(path: str | Path) -> Policy:
    """Read a TOML policy file; a missing or malformed file, or an unknown key, raises ``ConfigError``."""
    import tomllib

    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"policy file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"policy file {path} cannot be read: {exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"policy file {path} is not valid TOML: {exc}") from None
    return parse_policy(document, str(path))


def run_checks(report: Report, policy: Policy | Mapping[str, Any]) -> list[CheckResult]:
    """Every check the policy sets, in the order of ``CHECKS``, measured on ``report``."""
    if not isinstance(policy, Policy):
        policy = parse_policy(policy)
    return [check.evaluate(report, policy.checks[check.name]) for check in CHECKS if check.name in policy.checks]


# --- output -----------------------------------------------------------------------------------------------


def render_checks(results: list[CheckResult], stream: TextIO) -> None:
    """A plain-text table of the results, the details of each failure, and a final line."""
    rows = [("result", "check", "measured", "threshold")]
    rows += [("pass" if r.passed else "FAIL", r.name, r.measured, r.threshold) for r in results]
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    for row in rows:
        stream.write("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")
    failed = [r for r in results if not r.passed]
    if any(r.detail for r in failed):
        stream.write("\n")
        for r in failed:
            if r.detail:
                stream.write(f"  {r.name}: {r.detail}\n")
    stream.write(f"\n{verdict_line(results)}\n")


def verdict_line(results: list[CheckResult]) -> str:
    failed = [r.name for r in results if not r.passed]
    if not failed:
        return f"gwcheck: validation passed: {len(results)} of {len(results)} checks"
    return f"gwcheck: validation failed: {len(failed)} of {len(results)} checks failed: {', '.join(failed)}"
