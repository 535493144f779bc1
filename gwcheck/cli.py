"""The gwcheck command line: the only place that prints, and the only place that exits."""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import TextIO

from ._version import __version__

PROG = "gwcheck"


class ExitCode(enum.IntEnum):
    """Exit statuses of every command."""

    OK = 0
    CHECK_FAILED = 1  # a validation check failed
    USAGE = 2  # bad arguments or settings
    UNREADABLE = 3  # a capture cannot be read
    LIVE_FAILED = 4  # live: the capture could not start, or its program stopped on its own with an error


def _comma_floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a UDP port number, got {text!r}") from None
    if not 0 < value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"port {value} is outside 1-65535")
    return value


def _add_capture_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("captures", nargs="+", metavar="CAPTURE", help="pcap or pcapng files, plain or gzip (format found from the magic number)")
    parser.add_argument("--port", type=_port, default=6081, help="UDP port of Geneve (default: 6081)")


def _add_stream_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stream", action="store_true",
        help="read the captures as streams in bounded memory, for captures larger than memory (latency percentiles within 1%%; no packet or leg tables)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_analysis_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--appliance", action="append", metavar="IP", default=[], help="an appliance's address, when the roles cannot be inferred (repeatable)")
    parser.add_argument("--gwlb", action="append", metavar="IP", default=[], help="a GWLB node's address, when the roles cannot be inferred (repeatable)")
    parser.add_argument("--window", type=_positive_float, default=1.0, metavar="SECONDS", help="longest an appliance may hold a packet for it to pair (default: 1)")
    parser.add_argument("--stickiness", choices=("5-tuple", "3-tuple", "2-tuple"), default="5-tuple", help="the target group's flow key (default: 5-tuple)")
    parser.add_argument("--tcp-idle-timeout", type=_positive_float, default=350.0, metavar="SECONDS", help="GWLB's TCP idle timeout (default: 350)")
    parser.add_argument("--udp-idle-timeout", type=_positive_float, default=120.0, metavar="SECONDS", help="GWLB's idle timeout for other protocols (default: 120)")
    parser.add_argument("--expect-appliances", type=int, metavar="N", help="appliances that should carry traffic; fewer seen is a finding")
    parser.add_argument("--max-imbalance", type=_positive_float, default=1.5, metavar="RATIO", help="max/mean flows per appliance above which the spread is uneven (default: 1.5)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Prove an AWS Gateway Load Balancer deployment right from captures on its appliances.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = commands.add_parser(
        "analyze",
        help="pair every packet in and out of its appliance and report symmetry, latency and distribution",
        description="Read captures taken on GWLB appliances; pair legs, build flows, and report what is wrong and where.",
    )
    _add_capture_arguments(analyze)
    _add_analysis_arguments(analyze)
    analyze.add_argument("--format", choices=("text", "json", "html"), default="text", help="report format (default: text); html is one self-contained page with plots and needs -o")
    analyze.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of standard output")
    analyze.add_argument("--export", metavar="DIR", help="also write packets, legs and flows as Parquet and CSV, and report.json, to DIR")
    analyze.add_argument("--verbose", action="store_true", help="list every flow key of every finding")
    analyze.add_argument("--quiet", action="store_true", help="print only the one-line verdict")
    _add_stream_argument(analyze)
    analyze.add_argument("--dask", metavar="local[:N]|ADDRESS", help="run the analysis on Dask: a local cluster of N worker processes (default: one per core), or the scheduler at ADDRESS (tcp://host:8786); needs pip install 'gwcheck[dask]'")
    analyze.add_argument("--workdir", metavar="DIR", help="with --dask: keep the Parquet packet and leg tables in DIR (a directory or URL every worker reaches; default: a temporary directory)")

    decode = commands.add_parser("decode", help="decode captures into a packet table (Parquet or CSV)", description="Decode captures into the packet table, one row per packet.")
    _add_capture_arguments(decode)
    decode.add_argument("-o", "--output", required=True, metavar="FILE", help="output file: .parquet or .csv")
    decode.add_argument("--options", metavar="FILE", help="also write every Geneve option (class, type, critical, length, data) to FILE, .parquet or .csv")
    decode.add_argument("--text-addresses", action="store_true", help="add outer_src, outer_dst, inner_src, inner_dst as text beside the integer columns")

    simulate = commands.add_parser("simulate", help="write GWLB traffic with known truth", description="Write what tcpdump on GWLB appliances would capture, and a .truth.json beside it.")
    simulate.add_argument("-o", "--output", required=True, metavar="FILE", help="capture to write (with --split, one per appliance beside it)")
    simulate.add_argument("--seed", type=int, default=1, help="random seed: the same seed writes the same bytes (default: 1)")
    simulate.add_argument("--flows", type=int, default=40, help="inner flows (default: 40)")
    simulate.add_argument("--duration", type=float, default=5.0, metavar="SECONDS", help="time over which flows start (default: 5)")
    simulate.add_argument("--appliances", type=int, default=3, help="appliances in the target group (default: 3)")
    simulate.add_argument("--gwlb-nodes", type=int, default=2, help="GWLB nodes (default: 2)")
    simulate.add_argument("--endpoints", type=int, default=2, help="GWLB endpoints (default: 2)")
    simulate.add_argument("--weights", type=_comma_floats, metavar="W1,W2,...", help="relative share of flows per appliance (default: even)")
    simulate.add_argument("--ipv6-share", type=float, default=0.3, help="share of flows with IPv6 inner packets (default: 0.3)")
    simulate.add_argument("--latency-us", type=_comma_floats, default=[80.0], metavar="US[,US...]", help="median appliance dwell time, one value or one per appliance (default: 80)")
    simulate.add_argument("--latency-sigma", type=float, default=0.5, help="lognormal shape of the dwell time (default: 0.5)")
    simulate.add_argument("--endpoint-setup-ms", type=float, default=20.0, help="extra dwell of an appliance's first packet from each endpoint (default: 20)")
    simulate.add_argument("--appliance-mode", choices=("bridge", "route"), default="bridge", help="route: the appliance decrements the inner TTL (default: bridge)")
    simulate.add_argument("--link", choices=("ethernet", "vlan", "sll2"), default="ethernet", help="link-layer framing (default: ethernet)")
    simulate.add_argument("--vlan-id", type=int, default=100, help="VLAN ID with --link vlan (default: 100)")
    simulate.add_argument("--format", choices=("pcap", "pcap-ns", "pcapng"), default="pcap", help="file format (default: pcap)")
    simulate.add_argument("--split", action="store_true", help="one capture per appliance, as tcpdump on each would write")
    simulate.add_argument("--clock-offsets-ms", type=_comma_floats, default=[], metavar="MS,MS,...", help="with --split, each appliance's clock offset")
    faults = simulate.add_argument_group("faults", "what goes wrong, flow by flow (shared/docs/gwlb.md)")
    for flag, kind, default, metavar, text in SIMULATE_FAULT_OPTIONS:
        faults.add_argument(flag, type=kind, default=default, metavar=metavar, help=text)
    _add_validate_parser(commands)
    _add_live_parser(commands)
    return parser


def _config_type(parse):
    """An argparse type from a parser of ``report.validate`` that raises ConfigError."""
    from .errors import ConfigError

    def convert(text: str):
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _check_name(text: str) -> str:
    from .report.validate import CHECKS_BY_NAME

    name = text.replace("-", "_").removeprefix("__")
    if name not in CHECKS_BY_NAME:
        raise argparse.ArgumentTypeError(f"no check named {text!r}")
    return name


def _add_validate_parser(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser(
        "validate",
        help="check captures against thresholds: exit 0 when every check passes, 1 when any fails",
        description="Analyse captures and check the result against the thresholds of --policy and of the options below; "
        "each check passes or fails with the value measured beside its threshold.",
    )
    _add_capture_arguments(validate)
    _add_analysis_arguments(validate)
    # None marks a setting not given here, so that the policy's [analysis] table, or analyze()'s default, applies.
    validate.set_defaults(port=None, window=None, stickiness=None, tcp_idle_timeout=None, udp_idle_timeout=None, max_imbalance=None)
    validate.add_argument("--format", choices=("text", "json"), default="text", help="results format (default: text)")
    validate.add_argument("-o", "--output", metavar="FILE", help="write the results to FILE instead of standard output")
    validate.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML to FILE, one test case per check")
    _add_stream_argument(validate)
    _add_check_arguments(
        validate,
        "each runs only when set here or in the policy (--expect-appliances and --max-imbalance too); "
        "durations take us, ms or s, rates a percentage or a fraction",
    )


def _seconds(text: str) -> float:
    """A positive duration: seconds, or a number with a unit (500ms, 2s, 5m, 1h)."""
    units = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = text.strip(), "s"
    for suffix in sorted(units, key=len, reverse=True):
        if number.endswith(suffix):
            number, unit = number[: -len(suffix)], suffix
            break
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 60s, 500ms, 5m or 1h, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return value


def _add_check_arguments(parser: argparse.ArgumentParser, description: str) -> None:
    """The threshold options of ``gwcheck validate`` (one per check of ``report.validate.CHECKS``), with --policy and --skip."""
    from .report.validate import ANALYSIS_CHECKS, CHECKS, KINDS

    parser.add_argument("--policy", metavar="FILE", help="TOML file of checks and [analysis] settings; options given here override it")
    parser.add_argument("--skip", action="append", default=[], type=_check_name, metavar="CHECK", help="do not run CHECK even when the policy sets it (repeatable)")
    checks = parser.add_argument_group("checks", description)
    for check in CHECKS:
        if check.name in ANALYSIS_CHECKS:  # added by _add_analysis_arguments
            continue
        kind, text = KINDS[check.kind], check.help.replace("%", "%%")
        if kind.compare == "none":
            checks.add_argument(check.option, action="store_true", default=None, help=text)
        else:
            checks.add_argument(check.option, type=_config_type(kind.parse), metavar=kind.metavar, help=text)


def _add_live_parser(commands: argparse._SubParsersAction) -> None:
    live = commands.add_parser(
        "live",
        help="capture on an interface with tcpdump and show the analysis as it happens; report when stopped",
        description="Capture GWLB traffic on an interface (tcpdump, or dumpcap with --backend pyshark), refresh a view of "
        "the analysis every interval, and on Ctrl-C or at the end of --duration print the full report. With check "
        "options or --policy it exits as gwcheck validate does.",
    )
    live.add_argument("-i", "--interface", required=True, metavar="IFACE", help="interface to capture on (as tcpdump -i takes it)")
    live.add_argument("--duration", type=_seconds, metavar="DURATION", help="stop after DURATION (60s, 5m, 1h; default: at Ctrl-C)")
    live.add_argument("--interval", type=_seconds, default=2.0, metavar="DURATION", help="refresh the view every DURATION (default: 2s)")
    live.add_argument("--port", type=_port, default=None, help="UDP port of Geneve (default: 6081)")
    live.add_argument("--health-check-port", type=_port, default=80, metavar="N", help="TCP port of GWLB's health checks, captured too (default: 80)")
    live.add_argument("--write", metavar="FILE", help="also write the raw capture to FILE, for gwcheck analyze later")
    live.add_argument("--backend", choices=("tcpdump", "pyshark"), default="tcpdump", help="capture program: tcpdump, or pyshark (Wireshark's dumpcap, as pyshark runs it) (default: tcpdump)")
    live.add_argument("--format", choices=("text", "json"), default="text", help="format of the final report (default: text)")
    live.add_argument("-o", "--output", metavar="FILE", help="write the final report to FILE instead of standard output")
    live.add_argument("--verbose", action="store_true", help="list every flow key of every finding")
    live.add_argument("--quiet", action="store_true", help="print only the one-line verdict of the final report")
    _add_analysis_arguments(live)
    # None marks a setting not given here, so that the policy's [analysis] table, or analyze()'s default, applies.
    live.set_defaults(window=None, stickiness=None, tcp_idle_timeout=None, udp_idle_timeout=None, max_imbalance=None)
    _add_check_arguments(live, "as for gwcheck validate: each runs only when set here or in the policy (--expect-appliances and --max-imbalance too)")


# (flag, type, default, metavar, help) of the simulator's fault options; each maps to the Scenario field of its name.
SIMULATE_FAULT_OPTIONS: tuple[tuple[str, type, object, str, str], ...] = (
    ("--asymmetric", int, 0, "N", "flows whose reverse direction enters by another endpoint, GWLB node and appliance"),
    ("--one-sided", int, 0, "N", "flows whose reverse direction never reaches an appliance"),
    ("--moved", int, 0, "N", "flows that change appliance part way"),
    ("--not-returned-rate", float, 0.0, "SHARE", "share of ingress packets the appliance never sends back"),
    ("--not-returned-endpoint", int, None, "K", "restrict those drops to one endpoint (0-based index)"),
    ("--stale-cookie", int, 0, "N", "flows reusing an older flow's 5-tuple, answered with the older flow's options"),
    ("--modified-options", int, 0, "N", "flows the appliance returns with another attachment ID"),
    ("--originated", int, 0, "N", "flows the appliance sends into GWLB that never came from it"),
    ("--idle-gap", int, 0, "N", "flows silent past the idle timeout, then back with a new cookie"),
    ("--over-mtu", int, 0, "N", "jumbo flows (MSS 8961) with inner packets over 8,500 bytes"),
    ("--outer-fragments", int, 0, "N", "flows whose large return legs the appliance fragments (MTU 1500)"),
    ("--gso", int, 0, "N", "flows captured as GSO/GRO super-packets (an artefact, not a fault)"),
    ("--health-check-interval", float, 10.0, "SECONDS", "seconds between health checks from each GWLB node to each appliance; 0: none"),
    ("--health-check-unanswered", float, 0.0, "SHARE", "share of health checks left unanswered"),
    ("--failing-appliance", int, None, "K", "an appliance (0-based index) that answers no health check"),
    ("--tcp-idle-timeout", float, 350.0, "SECONDS", "GWLB's TCP idle timeout in seconds"),
    ("--udp-idle-timeout", float, 120.0, "SECONDS", "GWLB's idle timeout for other protocols in seconds"),
)
_SCENARIO_FIELD = {"--health-check-interval": "health_check_interval_s", "--tcp-idle-timeout": "tcp_idle_timeout_s", "--udp-idle-timeout": "udp_idle_timeout_s"}


@contextlib.contextmanager
def _warnings_to(stream: TextIO) -> Iterator[None]:
    """Show the library's warnings as one line each on ``stream``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                stream.write(f"{PROG}: warning: {warning.message}\n")


@contextlib.contextmanager
def _output(path: str | None, stdout: TextIO) -> Iterator[TextIO]:
    if path is None:
        yield stdout
        return
    with open(path, "w", encoding="utf-8") as handle:
        yield handle


@contextlib.contextmanager
def _progress_bar(stream: TextIO | None) -> Iterator[object]:
    """A progress callback drawing a bar on ``stream`` when it is a terminal; None otherwise."""
    if stream is None or not (getattr(stream, "isatty", None) and stream.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress("reading captures", BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=Console(file=stream), transient=True) as bar:
        task = bar.add_task("read", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _analyze(args: argparse.Namespace, stderr: TextIO | None = None):
    settings = {
        "port": args.port,
        "appliances": args.appliance,
        "gwlb_nodes": args.gwlb,
        "window_s": args.window,
        "stickiness": args.stickiness,
        "tcp_idle_timeout_s": args.tcp_idle_timeout,
        "udp_idle_timeout_s": args.udp_idle_timeout,
        "expect_appliances": args.expect_appliances,
        "max_imbalance": args.max_imbalance,
    }
    with _progress_bar(stderr) as progress:
        return _analyze_with(args, settings, progress)


def _analyze_with(args: argparse.Namespace, settings: dict, progress) -> object:
    """``analyze`` of ``args.captures`` with ``settings``, as a stream when ``--stream`` was given."""
    if getattr(args, "dask", None) or getattr(args, "workdir", None):
        from .errors import ConfigError

        if args.stream or not args.dask:
            raise ConfigError("--workdir needs --dask" if not args.dask else "--stream and --dask do not go together: Dask already bounds each worker's memory")
        from .fleet import analyze_on_dask

        return analyze_on_dask(args.captures, args.dask, args.workdir, **settings)
    if args.stream:
        from .incremental import analyze_stream

        return analyze_stream(args.captures, **settings)
    from .startup import analyze_captures  # reads the captures while pandas and the analysis are imported

    return analyze_captures(args.captures, progress=progress, **settings)


def _run_analyze(args: argparse.Namespace, stdout: TextIO) -> ExitCode:
    if args.format == "html" and args.output is None:
        from .errors import ConfigError

        raise ConfigError("--format html writes a file: give -o FILE, e.g. -o report.html")
    report = _analyze(args, sys.stderr)  # main() points sys.stderr at its stderr
    document = {"gwcheck_version": __version__, **report.to_dict()}
    with _output(args.output, stdout) as out:
        if args.format == "json":
            json.dump(document, out, indent=1)
            out.write("\n")
        elif args.format == "html":
            from .report.html import render_html

            render_html(report, out)
        else:
            from .report.terminal import render

            render(report, out, verbose=args.verbose, quiet=args.quiet)
    if args.export:
        from .tables.export import export_tables

        tables = {"flows": report.flows} if args.stream or args.dask else {"packets": report.packets, "legs": report.legs, "flows": report.flows}
        written = export_tables(tables, args.export)  # a stream keeps no packet or leg table
        with open(os.path.join(args.export, "report.json"), "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
        if not args.quiet and args.output is not None:
            stdout.write(f"exported {len(written) + 1} files to {args.export}\n")
    return ExitCode.OK


def _run_decode(args: argparse.Namespace, stdout: TextIO) -> ExitCode:
    from .errors import ConfigError
    from .startup import CaptureReader

    for output in filter(None, (args.output, args.options)):
        if not output.endswith((".parquet", ".csv")):
            raise ConfigError(f"output {output!r} must end in .parquet or .csv")
    reader = CaptureReader(args.captures, port=args.port)  # read while pandas and pyarrow are imported
    from .tables.export import write_table
    from .tables.packets import packet_table

    packets = packet_table(reader.columns())
    write_table(packets, args.output, text_addresses=args.text_addresses)
    stdout.write(f"wrote {len(packets)} packets to {args.output}\n")
    if args.options:
        from .tables.options import read_options

        options = read_options(args.captures, port=args.port, packets=packets)
        write_table(options, args.options)
        stdout.write(f"wrote {len(options)} Geneve options to {args.options}\n")
    return ExitCode.OK


def _run_simulate(args: argparse.Namespace, stdout: TextIO) -> ExitCode:
    from .simulate.scenario import Scenario
    from .simulate.simulator import simulate, truth_path_for

    scenario = Scenario(
        seed=args.seed,
        flows=args.flows,
        duration_s=args.duration,
        appliances=args.appliances,
        gwlb_nodes=args.gwlb_nodes,
        endpoints=args.endpoints,
        weights=args.weights,
        ipv6_share=args.ipv6_share,
        latency_median_us=args.latency_us,
        latency_sigma=args.latency_sigma,
        endpoint_setup_ms=args.endpoint_setup_ms,
        appliance_mode=args.appliance_mode,
        link=args.link,
        vlan_id=args.vlan_id,
        format=args.format,
        split=args.split,
        clock_offsets_ms=args.clock_offsets_ms,
        **{
            _SCENARIO_FIELD.get(flag, flag[2:].replace("-", "_")): getattr(args, flag[2:].replace("-", "_"))
            for flag, *_ in SIMULATE_FAULT_OPTIONS
        },
    )
    truth = simulate(scenario, args.output)
    names = ", ".join(f["path"] for f in truth["files"])
    faults = ", ".join(f"{kind} {len(keys)}" for kind, keys in truth["faults"].items()) or "none"
    stdout.write(
        f"wrote {truth['packets']} packets of {truth['flows']} flows to {names}; faulty flows: {faults}; "
        f"truth in {truth_path_for(args.output).name}\n"
    )
    return ExitCode.OK


def _policy(args: argparse.Namespace):
    """The checks and analysis settings of --policy, overridden by the options given on the command line."""
    from .report.validate import ANALYSIS_KEYS, CHECKS, Policy, load_policy

    given = Policy(
        checks={c.name: getattr(args, c.name) for c in CHECKS if getattr(args, c.name) is not None},
        analysis={key: getattr(args, key) for key in ANALYSIS_KEYS if getattr(args, key) not in (None, [])},
    )
    return (load_policy(args.policy) if args.policy else Policy()).updated(given).without(set(args.skip))


def _run_validate(args: argparse.Namespace, stdout: TextIO) -> ExitCode:
    import time

    from .errors import ConfigError
    from .report.junit import write_junit
    from .report.validate import render_checks, run_checks, verdict_line

    policy = _policy(args)
    if not policy.checks:
        raise ConfigError("no checks to run: give --policy FILE or check options such as --max-latency-p99 2ms")
    started = time.monotonic()
    with _progress_bar(sys.stderr) as progress:  # main() points sys.stderr at its stderr
        report = _analyze_with(args, policy.analyze_arguments(), progress)
    results = run_checks(report, policy)
    elapsed_s = time.monotonic() - started
    passed = all(r.passed for r in results)
    with _output(args.output, stdout) as out:
        if args.format == "json":
            document = {"gwcheck_version": __version__, "passed": passed, "verdict": verdict_line(results),
                        "captures": list(args.captures), "checks": [r.to_dict() for r in results]}
            json.dump(document, out, indent=1)
            out.write("\n")
        else:
            counts = {"packet": len(report.packets), "flow": len(report.flows), "appliance": len(report.appliances)}
            seen = ", ".join(f"{n:,} {word}{'s' if n != 1 else ''}" for word, n in counts.items())
            files = len(args.captures)
            out.write(f"gwcheck validate: {seen} in {files} capture{'s' if files != 1 else ''}\n\n")
            render_checks(results, out)
    if args.junit:
        properties = {"captures": " ".join(args.captures), "policy": args.policy or "", "gwcheck_version": __version__}
        with open(args.junit, "w", encoding="utf-8") as handle:
            write_junit(results, handle, properties, elapsed_s)
    return ExitCode.OK if passed else ExitCode.CHECK_FAILED


def _run_live(args: argparse.Namespace, stdout: TextIO) -> ExitCode:
    import signal
    import time

    from .capture.live import CaptureProcess, capture_filter
    from .decode.geneve import GENEVE_PORT
    from .errors import LiveCaptureError
    from .incremental import IncrementalAnalysis
    from .live import LiveSession
    from .live.view import StatusLines, TerminalView
    from .report.terminal import is_terminal, render
    from .report.validate import render_checks, run_checks, verdict_line

    stderr = sys.stderr  # main() points it at its stderr
    policy = _policy(args)
    settings = policy.analyze_arguments()
    port = settings.setdefault("port", GENEVE_PORT)
    capture = CaptureProcess(args.interface, capture_filter(port, args.health_check_port), args.backend)
    views: list = []

    def started() -> None:
        until = f"for {args.duration:g} s or until Ctrl-C" if args.duration else "until Ctrl-C"
        stderr.write(f"{PROG}: live: capturing on {args.interface} with {capture.program} ({capture.bpf}) {until}\n")
        stderr.flush()
        views.append(TerminalView(stderr, f"gwcheck live {args.interface}") if is_terminal(stderr) else StatusLines(stderr))

    tee = open(args.write, "wb") if args.write else None  # noqa: SIM115 - closed below
    session = LiveSession(
        capture, IncrementalAnalysis(**settings, clock=time.time_ns), name=f"live:{args.interface}", port=port, duration_s=args.duration,
        interval_s=args.interval, on_start=started, on_interval=lambda snapshot: views[-1].update(snapshot), tee=tee,
    )

    def interrupted(signum: int, frame: object) -> None:
        session.stop("interrupt")
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = session.run()
    except LiveCaptureError as exc:
        stderr.write(f"{PROG}: error: {exc}\n")
        return ExitCode.LIVE_FAILED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for view in views:
            view.close()
        capture.stop()
        if tee is not None:
            tee.close()
    if result.report is None:  # the capture never started
        stderr.write(f"{PROG}: error: {result.error or capture.program + ' wrote no capture'}\n")
        return ExitCode.LIVE_FAILED
    stderr.write(f"{PROG}: live: stopped ({result.stopped_by}) after {result.elapsed_s:.1f} s, {result.packets:,} packets read\n")
    drops = result.capture.get("kernel_drops")
    if drops:
        stderr.write(f"{PROG}: warning: the kernel dropped {drops:,} packets before {capture.program} read them: the report misses them\n")
    report = result.report
    results = run_checks(report, policy) if policy.checks else []
    with _output(args.output, stdout) as out:
        if args.format == "json":
            live = {"interface": args.interface, "elapsed_s": result.elapsed_s, "stopped_by": result.stopped_by, "packets": result.packets,
                    "error": None if result.error is None else str(result.error), **result.capture}
            document = {"gwcheck_version": __version__, **report.to_dict(), "live": live}
            if results:
                document["validation"] = {"passed": all(r.passed for r in results), "verdict": verdict_line(results), "checks": [r.to_dict() for r in results]}
            json.dump(document, out, indent=1)
            out.write("\n")
        else:
            from .report.terminal import render

            render(report, out, verbose=args.verbose, quiet=args.quiet)
            if results:
                out.write("\n")
                render_checks(results, out)
    if result.error is not None:
        stderr.write(f"{PROG}: error: {result.error}\n")
        return ExitCode.LIVE_FAILED
    return ExitCode.OK if all(r.passed for r in results) else ExitCode.CHECK_FAILED


_COMMANDS = {"analyze": _run_analyze, "decode": _run_decode, "simulate": _run_simulate, "validate": _run_validate, "live": _run_live}


def run() -> None:
    """The console script and ``python -m gwcheck``: run ``main``, then end the process without tearing it down.

    After a command the process holds its tables (hundreds of MB for a large capture); freeing them object by object
    and unloading pandas and pyarrow takes about a third of a second that nobody needs.  By then every file gwcheck
    wrote is closed; the standard streams are flushed here.  With child processes alive (a Dask LocalCluster's, say)
    the interpreter exits as usual, so that its exit handlers stop them.
    """
    code = main()
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.active_children():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to say there
            pass
    os._exit(code)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):  # help and usage errors too
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message
        return int(exc.code or 0) if exc.code in (0, None) else ExitCode.USAGE
    from .errors import CaptureError, ConfigError, GwcheckError

    try:
        with _warnings_to(stderr), contextlib.redirect_stderr(stderr):
            return int(_COMMANDS[args.command](args, stdout))
    except CaptureError as exc:
        stderr.write(f"{PROG}: error: {exc}\n")
        return ExitCode.UNREADABLE
    except ConfigError as exc:
        stderr.write(f"{PROG}: error: {exc}\n")
        return ExitCode.USAGE
    except GwcheckError as exc:
        stderr.write(f"{PROG}: error: {exc}\n")
        return ExitCode.UNREADABLE
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as Unix tools do
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the interpreter's final flush cannot fail
        except OSError:
            pass
        return ExitCode.OK
    except OSError as exc:
        stderr.write(f"{PROG}: error: {exc.filename or ''}: {exc.strerror or exc}\n")
        return ExitCode.UNREADABLE
    except KeyboardInterrupt:
        stderr.write(f"{PROG}: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
