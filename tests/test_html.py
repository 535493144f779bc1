"""The HTML report and its plots: every plot builds on a faulty, a healthy and an empty report; the page holds every
section, embeds every image and fetches nothing; text is escaped; `analyze --format html` needs -o; and a real
headless chromium opens the page with no console error, every image loaded and the tables sorting.

The browser tests keep what they rendered in tests/artifacts/ (report-*.html, *.png screenshots) and skip only
when no chromium is installed (.ci/system-packages installs Debian's).
"""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from io import BytesIO, StringIO
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import gwcheck
from gwcheck.analysis.findings import SEVERITIES, Finding
from gwcheck.cli import ExitCode, main
from gwcheck.report import plots
from gwcheck.report.html import MAX_FLOW_ROWS, SECTIONS, render_html
from gwcheck.simulate.scenario import Scenario
from gwcheck.simulate.simulator import simulate

ROOT = Path(__file__).resolve().parents[1]
HEALTHY = ROOT / "samples" / "healthy.pcap"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FAULTY = dict(
    flows=150, asymmetric=5, one_sided=5, moved=5, not_returned_rate=0.01, stale_cookie=4, modified_options=3,
    originated=3, idle_gap=4, over_mtu=2, outer_fragments=2, gso=2, health_check_unanswered=0.3,
)
BUILDERS = {
    "plot_latency": plots.plot_latency,
    "plot_latency_over_time": plots.plot_latency_over_time,
    "plot_distribution": plots.plot_distribution,
    "plot_symmetry": plots.plot_symmetry,
    "plot_timeline": plots.plot_timeline,
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EMPTY_PCAP = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # a pcap header, Ethernet, and no packet
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
    "--virtual-time-budget=5000",
)
CONSOLE_LINE = re.compile(r":CONSOLE[:(\]]|Uncaught")


# --- reports and pages ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, gwcheck.Report]:
    """A report with every fault, the healthy sample's, and that of a capture without packets."""
    folder = tmp_path_factory.mktemp("html")
    simulate(Scenario(seed=3, **FAULTY), folder / "faulty.pcap")
    (folder / "empty.pcap").write_bytes(EMPTY_PCAP)
    return {"faulty": gwcheck.analyze(folder / "faulty.pcap"), "healthy": gwcheck.analyze(HEALTHY), "empty": gwcheck.analyze(folder / "empty.pcap")}


@pytest.fixture(scope="module")
def pages(reports: dict[str, gwcheck.Report]) -> dict[str, str]:
    out = {}
    for name, report in reports.items():
        stream = StringIO()
        assert render_html(report, stream) is None
        out[name] = stream.getvalue()
    return out


class PageParser(HTMLParser):
    """The parts of a page the tests look at: title, ids, images, every URL attribute, findings and table rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.ids: list[str] = []
        self.classes: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self.urls: list[tuple[str, str, str]] = []
        self.finding_severities: list[str] = []
        self.finding_kinds: list[str] = []
        self.tags: list[str] = []
        self.flow_rows = 0
        self._in_title = False
        self._in_flows = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if "id" in values:
            self.ids.append(values["id"])
            self.classes[values["id"]] = values.get("class", "")
        for name in ("src", "href", "action", "data", "poster", "srcset"):
            if name in values:
                self.urls.append((tag, name, values[name]))
        if tag == "img":
            self.images.append(values)
        if tag == "title":
            self._in_title = True
        if tag == "article" and "finding" in values.get("class", ""):
            self.finding_severities.append(values["class"].split()[1])
            self.finding_kinds.append(values["data-kind"])
        if tag == "table" and "flows" in values.get("class", "").split():
            self._in_flows = True
        if tag == "tr" and self._in_flows:
            self.flow_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag == "table":
            self._in_flows = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


# --- plots ----------------------------------------------------------------------------------------------------


def figure_texts(figure: Figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts]


@pytest.mark.parametrize("which", ["faulty", "healthy", "empty"])
@pytest.mark.parametrize("builder", BUILDERS)
def test_every_plot_builds_a_figure_on_the_agg_canvas(reports: dict[str, gwcheck.Report], which: str, builder: str) -> None:
    figure = BUILDERS[builder](reports[which])
    assert isinstance(figure, Figure)
    assert isinstance(figure.canvas, FigureCanvasAgg)
    assert figure.get_suptitle()
    assert figure.get_size_inches()[0] == plots.WIDTH_IN
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=50)
    assert buffer.getvalue().startswith(PNG_SIGNATURE)
    if which == "empty" or (which == "healthy" and builder == "plot_timeline"):
        assert any(text.startswith("no ") for text in figure_texts(figure)), figure_texts(figure)
    else:
        assert not any(text.startswith("no ") for text in figure_texts(figure))


def test_plots_label_their_axes_with_units(reports: dict[str, gwcheck.Report]) -> None:
    report = reports["faulty"]
    hist, cdf = plots.plot_latency(report).axes[:2]
    assert hist.get_xscale() == "log" and "µs" in hist.get_xlabel() and hist.get_ylabel()
    assert cdf.get_xscale() == "log" and "µs" in cdf.get_xlabel() and cdf.get_ylim()[1] > 1
    over_time = plots.plot_latency_over_time(report)
    assert "µs" in over_time.axes[0].get_ylabel() and "(s)" in over_time.get_supxlabel()
    when, within = plots.plot_timeline(report).axes[:2]
    assert "(s)" in when.get_xlabel() and "ms" in within.get_xlabel()
    assert plots.plot_symmetry(report).axes[0].get_xlabel() == "flows"


def test_timeline_shows_the_flows_that_moved_or_went_one_sided_or_asymmetric(reports: dict[str, gwcheck.Report]) -> None:
    report = reports["faulty"]
    flows = report.flows
    chosen = flows[flows["reasons"].str.contains("moved|one_sided|asymmetric")]
    figure = plots.plot_timeline(report)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert len(labels) == min(len(chosen), plots.MAX_TIMELINE_FLOWS) > 0
    assert {label.split(" @")[0] for label in labels} == {key.split(" @ ")[0] for key in chosen["key"]}
    for ax in figure.axes[:2]:
        crosses = [c for c in ax.collections if c.get_gid() == "moved"]
        assert len(crosses) == int((chosen["moved_at_ns"] >= 0).sum()) > 0


def test_symmetry_plot_counts_every_verdict(reports: dict[str, gwcheck.Report]) -> None:
    report = reports["faulty"]
    ax = plots.plot_symmetry(report).axes[0]
    widths = {t.get_text().replace(" ", "_"): bar.get_width() for t, bar in zip(ax.get_yticklabels(), ax.patches)}
    assert widths == report.flows["verdict"].value_counts().to_dict()


def test_report_methods_return_the_plots(reports: dict[str, gwcheck.Report]) -> None:
    report = reports["faulty"]
    for name in BUILDERS:
        figure = getattr(report, name)()
        assert isinstance(figure, Figure) and figure.get_suptitle() == BUILDERS[name](report).get_suptitle()


def test_plots_leave_pyplot_alone() -> None:
    code = (
        "import sys, gwcheck\n"
        f"r = gwcheck.analyze({str(HEALTHY)!r})\n"
        "[getattr(r, n)() for n in ('plot_latency', 'plot_latency_over_time', 'plot_distribution', 'plot_symmetry', 'plot_timeline')]\n"
        "import io; from gwcheck.report.html import render_html; render_html(r, io.StringIO())\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the page -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["faulty", "healthy", "empty"])
def test_page_has_every_section_and_embeds_every_image(pages: dict[str, str], which: str) -> None:
    page = parse(pages[which])
    assert page.title == "gwcheck report"
    assert pages[which].startswith("<!DOCTYPE html>")
    for section_id, _ in SECTIONS:
        assert page.ids.count(section_id) == 1, section_id
    assert len(page.images) == 5
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)
        assert image["alt"] and int(image["width"]) > 0 and int(image["height"]) > 0


@pytest.mark.parametrize("which", ["faulty", "healthy", "empty"])
def test_page_fetches_nothing(pages: dict[str, str], which: str) -> None:
    text = pages[which]
    page = parse(text)
    for tag, name, url in page.urls:
        assert url.startswith(("data:", "#")), (tag, name, url[:80])
    assert "http://" not in text and "https://" not in text
    assert not {"link", "iframe", "object", "embed", "base"} & set(page.tags)
    assert not re.search(r"<script[^>]*\bsrc=", text)
    assert "url(" not in text  # no CSS fetches either
    assert "default-src 'none'" in text  # the Content-Security-Policy forbids any other source


def test_verdict_is_coloured_and_findings_are_ordered_by_severity(pages: dict[str, str], reports: dict[str, gwcheck.Report]) -> None:
    faulty, healthy = parse(pages["faulty"]), parse(pages["healthy"])
    assert faulty.classes["verdict"] == "error"
    assert healthy.classes["verdict"] == "ok"
    report = reports["faulty"]
    assert faulty.finding_kinds == [f.kind for f in report.findings]
    ranks = [SEVERITIES.index(s) for s in faulty.finding_severities]
    assert ranks == sorted(ranks) and len(set(ranks)) > 1
    assert healthy.finding_kinds == []
    for finding in report.findings:
        for key in finding.flow_keys:
            assert key.replace(">", "&gt;") in pages["faulty"], key
        assert finding.cause in pages["faulty"].replace("&#x27;", "'")


def test_faulty_flow_table_lists_every_faulty_flow(pages: dict[str, str], reports: dict[str, gwcheck.Report]) -> None:
    flows = reports["faulty"].flows
    faulty = flows[flows["verdict"] != "symmetric"]
    page = parse(pages["faulty"])
    assert page.flow_rows == 1 + min(len(faulty), MAX_FLOW_ROWS)  # the header row and one per flow
    for key in faulty["key"]:
        assert f'data-sort="{key.replace(">", "&gt;")}"' in pages["faulty"]
    assert parse(pages["healthy"]).flow_rows == 0


def test_all_text_is_escaped(reports: dict[str, gwcheck.Report]) -> None:
    hostile = Finding(
        "x<y", "error", 1, "flows", "<script>alert(1)</script>", "cause & <i>effect</i>",
        flow_keys=['<img src=x onerror="alert(2)">'] * 8, by_appliance={"<b>a</b>": 1},
    )
    report = dataclasses.replace(reports["healthy"], findings=[hostile])
    stream = StringIO()
    render_html(report, stream)
    text = stream.getvalue()
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<i>effect</i>" not in text and "cause &amp; &lt;i&gt;effect&lt;/i&gt;" in text
    assert "<b>a</b>" not in text
    page = parse(text)
    assert all(image["src"].startswith("data:image/png") for image in page.images)
    assert page.finding_kinds == ["x<y"]


# --- the command line -----------------------------------------------------------------------------------------


def test_cli_writes_html_and_requires_an_output_file(tmp_path: Path) -> None:
    out, err = StringIO(), StringIO()
    assert main(["analyze", str(HEALTHY), "--format", "html"], stdout=out, stderr=err) == ExitCode.USAGE
    assert "-o FILE" in err.getvalue() and out.getvalue() == ""
    target = tmp_path / "report.html"
    out, err = StringIO(), StringIO()
    assert main(["analyze", str(HEALTHY), "--format", "html", "-o", str(target)], stdout=out, stderr=err) == ExitCode.OK
    page = parse(target.read_text(encoding="utf-8"))
    assert page.title == "gwcheck report" and "verdict" in page.ids and len(page.images) == 5


# --- a real browser -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}): .ci/system-packages installs Debian's chromium")


def run_chromium(chromium: str, profile: Path, page: Path, *mode: str) -> subprocess.CompletedProcess:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,4000", *mode, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    return struct.unpack(">II", data[16:24])


SORT_PROBE = """<script>
window.addEventListener("load", function () {
  var table = document.querySelector("table.flows"), header = table.tHead.rows[0].cells;
  var column = Array.prototype.findIndex.call(header, function (th) { return th.textContent.indexOf("not returned") === 0; });
  header[column].click(); header[column].click();  // descending
  var first = table.tBodies[0].rows[0].cells[column].getAttribute("data-sort");
  document.documentElement.setAttribute("data-sort-probe", header[column].getAttribute("aria-sort") + " " + first);
});
</script></body>"""


@pytest.mark.parametrize("which", ["faulty", "healthy"])
def test_chromium_renders_the_page(chromium: str, pages: dict[str, str], reports: dict[str, gwcheck.Report], tmp_path: Path, which: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / f"report-{which}.html"
    page.write_text(pages[which], encoding="utf-8")

    dump = run_chromium(chromium, tmp_path / "profile", page, "--dump-dom")
    assert dump.returncode == 0, dump.stderr[-2000:]
    (ARTIFACTS / f"report-{which}.dom.html").write_text(dump.stdout, encoding="utf-8")
    assert "<title>gwcheck report</title>" in dump.stdout
    images = len(parse(pages[which]).images)
    assert f'data-images="loaded {images}"' in dump.stdout, re.findall(r"data-images=\"[^\"]*\"", dump.stdout)
    for section_id, _ in SECTIONS:
        assert f'id="{section_id}"' in dump.stdout
    assert console_lines(dump.stderr) == []

    screenshot = ARTIFACTS / f"report-{which}.png"
    screenshot.unlink(missing_ok=True)
    shot = run_chromium(chromium, tmp_path / "profile", page, f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png_size(screenshot) == (1280, 4000)
    assert screenshot.stat().st_size > 50_000  # a rendered page, not a blank one
    assert console_lines(shot.stderr) == []


def test_chromium_sorts_the_faulty_flow_table(chromium: str, pages: dict[str, str], reports: dict[str, gwcheck.Report], tmp_path: Path) -> None:
    page = tmp_path / "sort.html"
    page.write_text(pages["faulty"].replace("</body>", SORT_PROBE), encoding="utf-8")
    dump = run_chromium(chromium, tmp_path / "profile", page, "--dump-dom")
    probe = re.search(r'data-sort-probe="(\w+) ([^"]*)"', dump.stdout)
    assert probe, dump.stderr[-2000:]
    flows = reports["faulty"].flows
    assert probe.group(1) == "descending"
    assert float(probe.group(2)) == flows.loc[flows["verdict"] != "symmetric", "not_returned"].max()
    assert console_lines(dump.stderr) == []


def test_console_errors_would_be_caught(chromium: str, pages: dict[str, str], tmp_path: Path) -> None:
    """The console check is not vacuous: a page that throws shows up in chromium's log."""
    page = tmp_path / "broken.html"
    page.write_text(pages["healthy"].replace("</body>", "<script>undefinedFunction();</script></body>"), encoding="utf-8")
    dump = run_chromium(chromium, tmp_path / "profile", page, "--dump-dom")
    assert any("undefinedFunction" in line for line in console_lines(dump.stderr)), dump.stderr[-2000:]
