"""The report as one self-contained HTML page: the verdict, the findings, every table of the text report, plots and
sortable tables of the faulty flows.

Nothing is fetched when the page opens: plots are embedded as base64 PNG, the CSS and the few lines of JavaScript
(sortable tables) are inline, and a Content-Security-Policy forbids every other source.  All text is escaped.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from html import escape
from typing import TextIO

import pandas as pd

from .._version import __version__
from ..analysis.findings import FLOW_SEVERITY, SEVERITIES, Finding
from ..analysis.symmetry import REASONS
from ..schema import NS_PER_SECOND
from . import plots
from .model import Report

PNG_DPI = 150  # plots are drawn 8 in wide: 1200 px, shown at up to 960 px, sharp on any screen
DISPLAY_DPI = 120
EXAMPLE_KEYS = 3  # flow keys shown before the rest fold away (as in the text report)
MAX_KEYS = 1000  # flow keys listed per finding or list; the exports hold them all
MAX_FLOW_ROWS = 2000  # rows of the faulty-flow table
MAX_PROBE_ROWS = 500
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

#: Every section of the page: (id, heading), in page order.
SECTIONS = (
    ("verdict", "Verdict"),
    ("findings", "Findings"),
    ("summary", "Capture summary"),
    ("appliances", "Appliances"),
    ("endpoints", "Endpoints"),
    ("gwlb-nodes", "GWLB nodes"),
    ("distribution", "Distribution"),
    ("symmetry", "Symmetry"),
    ("faulty-flows", "Faulty flows"),
    ("latency", "Latency"),
    ("mtu", "MTU"),
    ("idle", "Idle timeouts"),
    ("health-checks", "Health checks"),
)

CSS = """
:root { --ok: #2e7d32; --error: #c62828; --warning: #b26a00; --info: #1565c0; --line: #e3e6ea; --muted: #5f6b7a; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: #1d2733; font: 14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 0 24px 48px; }
header.top { background: #17212e; color: #fff; padding: 18px 0 14px; }
header.top .inner { max-width: 1240px; margin: 0 auto; padding: 0 24px; display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
header.top h1 { margin: 0; font-size: 22px; letter-spacing: .3px; }
header.top .files { color: #b8c4d3; font-size: 13px; }
nav { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid var(--line); }
nav .inner { max-width: 1240px; margin: 0 auto; padding: 6px 24px; display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 13px; }
nav a { color: #33475b; text-decoration: none; padding: 2px 0; }
nav a:hover { color: var(--info); text-decoration: underline; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin-top: 18px; padding: 18px 22px; }
section > h2 { margin: 0 0 12px; font-size: 18px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
p.note, .muted { color: var(--muted); }
#verdict { border-left: 8px solid var(--ok); }
#verdict.error { border-left-color: var(--error); }
#verdict.warning { border-left-color: var(--warning); }
#verdict .headline { font-size: 20px; font-weight: 600; margin: 0 0 10px; }
#verdict.ok .headline { color: var(--ok); }
#verdict.error .headline { color: var(--error); }
#verdict.warning .headline { color: var(--warning); }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin: 0; padding: 0; list-style: none; }
.stats li { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.stats b { display: block; font-size: 18px; }
.stats span { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; border-radius: 10px; padding: 0 9px; font-size: 12px; font-weight: 600; color: #fff; text-transform: uppercase; letter-spacing: .4px; }
a.badge { text-decoration: none; }
.badge.error { background: var(--error); } .badge.warning { background: var(--warning); } .badge.info { background: var(--info); } .badge.ok { background: var(--ok); }
.finding { border: 1px solid var(--line); border-left: 5px solid var(--info); border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
.finding.error { border-left-color: var(--error); } .finding.warning { border-left-color: var(--warning); }
.finding .title { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.finding .kind { font-weight: 600; }
.finding .count { color: var(--muted); }
.finding p { margin: 6px 0; }
.finding .where { font-size: 13px; color: var(--muted); }
ul.keys { margin: 4px 0; padding-left: 20px; font: 12.5px/1.6 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
details > summary { cursor: pointer; color: var(--info); font-size: 13px; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 4px; }
.scroll { overflow-x: auto; }
.tall { max-height: 640px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
.tall table { margin: 0; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; white-space: nowrap; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key, td.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
td.key { white-space: nowrap; }
table.flows th { white-space: normal; vertical-align: bottom; }
tbody tr:nth-child(even) { background: #fafbfc; }
tbody tr:hover { background: #eef4fb; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: "\\00a0\\2195"; color: #9aa6b2; font-size: 11px; }
table.sortable th[aria-sort=ascending]::after { content: "\\00a0\\25B2"; color: #33475b; }
table.sortable th[aria-sort=descending]::after { content: "\\00a0\\25BC"; color: #33475b; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
.tag { display: inline-block; border-radius: 4px; padding: 0 6px; font-size: 12px; background: #eef1f5; margin: 1px 2px 1px 0; white-space: nowrap; }
.tag.error { background: #fdecea; color: var(--error); } .tag.warning { background: #fff4e0; color: var(--warning); } .tag.ok { background: #e8f5e9; color: var(--ok); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
figure { margin: 14px 0 4px; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
.ok-text { color: var(--ok); } .error-text { color: var(--error); } .warning-text { color: var(--warning); }
footer { max-width: 1240px; margin: 24px auto 0; padding: 0 24px; color: var(--muted); font-size: 12px; }
@media print { nav { display: none; } section { break-inside: avoid; border: none; } details { display: block; } }
"""

SCRIPT = """
(function () {
  "use strict";
  function value(cell) {
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim() : v;
  }
  function sort(table, th) {
    var index = th.cellIndex, body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var numeric = th.classList.contains("num");
    rows.sort(function (a, b) {
      var x = value(a.cells[index]), y = value(b.cells[index]);
      if (x === "" || y === "") { return x === y ? 0 : (x === "" ? 1 : -1); }  // missing values last
      var c = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true});
      return ascending ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.tabIndex = 0;
      th.title = "sort";
      th.addEventListener("click", function () { sort(table, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(table, th); } });
    });
  });
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
    document.documentElement.setAttribute("data-images", broken ? "broken " + broken + " of " + images.length : "loaded " + images.length);
  });
})();
"""


# --- formatting -----------------------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def _number(value: object, digits: int = 0) -> str:
    if _missing(value):
        return "–"
    return f"{value:,.{digits}f}"


def _percent(value: object, digits: int = 1) -> str:
    return "–" if _missing(value) else f"{value * 100:.{digits}f}%"


def _time(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "–"
    moment = dt.datetime.fromtimestamp(ts_ns // NS_PER_SECOND, tz=dt.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ts_ns % NS_PER_SECOND // 1000:06d} UTC"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _class(css: str | None) -> str:
    return f' class="{escape(css)}"' if css else ""


def _tag(text: str, css: str = "") -> str:
    return f'<span class="tag {escape(css)}">{escape(text)}</span>'


def _num(value: object, digits: int = 0, text: str | None = None) -> str:
    """A right-aligned number cell that sorts by its value."""
    key = "" if _missing(value) else repr(float(value))
    return f'<td class="num" data-sort="{key}">{escape(text if text is not None else _number(value, digits))}</td>'


def _cell(text: object, css: str | None = None) -> str:
    return f"<td{_class(css)}>{escape(str(text))}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = (), sortable: bool = False, tall: bool = False, css: str = "") -> str:
    """A table of pre-rendered ``<td>`` cells; ``numeric`` are the indexes of right-aligned columns."""
    numeric = set(numeric)
    head = "".join(f'<th{_class("num" if k in numeric else "")} scope="col">{escape(h)}</th>' for k, h in enumerate(headers))
    body = "\n".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    classes = " ".join(c for c in ("sortable" if sortable else "", css) if c)
    table = f'<table{_class(classes)}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'
    return f'<div class="{"tall" if tall else "scroll"}">{table}</div>'


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are already HTML."""
    return '<dl class="facts">' + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _section(section_id: str, body: str, css: str = "") -> str:
    heading = dict(SECTIONS)[section_id]
    return f'<section id="{section_id}"{_class(css)}>\n<h2>{escape(heading)}</h2>\n{body}\n</section>'


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _counts(counts: dict) -> str:
    return escape(", ".join(f"{k} {v:,}" for k, v in counts.items()) or "–")


def _key_items(keys: Sequence[str]) -> str:
    return '<ul class="keys">' + "".join(f"<li>{escape(k)}</li>" for k in keys) + "</ul>" if keys else ""


def _keys_list(keys: Sequence[str], shown: int = EXAMPLE_KEYS, what: tuple[str, str] = ("flow key", "flow keys")) -> str:
    """The first ``shown`` keys, and the rest (up to ``MAX_KEYS``) folded away; ``what`` names one and several."""
    if not keys:
        return ""
    out = _key_items(keys[:shown])
    if len(keys) > shown:
        rest = keys[shown:MAX_KEYS]
        cut = f'<p class="note">… {len(keys) - MAX_KEYS:,} more: <code>--export DIR</code> writes the full flow table.</p>' if len(keys) > MAX_KEYS else ""
        hidden = len(keys) - shown
        label = f"{hidden:,}{' more' if shown else ''} {what[hidden != 1]}"
        out += f"<details><summary>{escape(label)}</summary>{_key_items(rest)}{cut}</details>"
    return out


# --- plots ----------------------------------------------------------------------------------------------------


def _image(figure, alt: str, caption: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, facecolor="white")
    width, height = (round(v * DISPLAY_DPI) for v in figure.get_size_inches())
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" width="{width}" height="{height}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


# --- sections -------------------------------------------------------------------------------------------------


def _verdict_class(report: Report) -> str:
    if any(f.severity == "error" for f in report.findings):
        return "error"
    return "ok" if report.healthy else "warning"


def _verdict(report: Report) -> str:
    summary = report.summary
    by_severity = {s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITIES}
    faulty = int((report.flows["verdict"] != "symmetric").sum()) if len(report.flows) else 0
    overall = report.latency.get("overall", {})
    stats = [
        (_number(len(report.flows)), "flows"),
        (_number(faulty), "faulty flows"),
        (_number(summary.get("packets", 0)), "packets"),
        (_number(len(report.roles.appliances)), "appliances"),
        (_number(len(report.roles.gwlb_nodes)), "GWLB nodes"),
        (_number(len(report.endpoints)), "endpoints"),
        (f"{summary.get('duration_s', 0.0):,.1f} s", "captured"),
        (f"{_number(overall['p99'], 1)} µs" if overall.get("p99") is not None else "–", "latency p99"),
    ]
    chips = " ".join(
        f'<a href="#findings" class="badge {s}">{escape(_plural(n, s))}</a>' for s, n in by_severity.items() if n
    ) or '<span class="badge ok">no findings</span>'
    items = "".join(f"<li><b>{escape(value)}</b><span>{escape(label)}</span></li>" for value, label in stats)
    body = f'<p class="headline">{escape(report.verdict)}</p>\n<p>{chips}</p>\n<ul class="stats">{items}</ul>'
    return _section("verdict", body, _verdict_class(report))


def _breakdown(label: str, counts: dict[str, int]) -> str:
    if not counts:
        return ""
    return f"{escape(label)}: " + ", ".join(f"{escape(str(k))} <b>{v:,}</b>" for k, v in counts.items())


def _finding(finding: Finding) -> str:
    where = " · ".join(
        part for part in (
            _breakdown("by appliance", finding.by_appliance),
            _breakdown("by endpoint", finding.by_endpoint),
            _breakdown("by GWLB node", finding.by_gwlb_node),
        ) if part
    )
    return (
        f'<article class="finding {escape(finding.severity)}" data-kind="{escape(finding.kind)}">'
        f'<div class="title"><span class="badge {escape(finding.severity)}">{escape(finding.severity)}</span>'
        f'<span class="kind">{escape(finding.kind.replace("_", " "))}</span>'
        f'<span class="count">{escape(f"{finding.count:,} {finding.unit}")}</span></div>'
        f"<p>{escape(finding.message)}</p>"
        f"<p><strong>Likely cause:</strong> {escape(finding.cause)}</p>"
        + (f'<p class="where">{where}</p>' if where else "")
        + _keys_list(finding.flow_keys)
        + "</article>"
    )


def _findings(report: Report) -> str:
    if not report.findings:
        return _section("findings", '<p class="ok-text">No findings: every flow is symmetric and every packet came back.</p>')
    return _section("findings", _note("Most severe first, then most frequent.") + "\n".join(_finding(f) for f in report.findings))


def _summary(report: Report) -> str:
    summary = report.summary
    files = []
    for f in summary.get("files", []):
        links = ", ".join(sorted({str(i["link_type"]) for i in f.get("interfaces", [])}))
        damage = f"damaged at byte {f['damage']['offset']:,}: {f['damage']['reason']}" if f.get("damage") else "–"
        files.append([_cell(f["path"], "mono"), _cell(f["format"]), _cell(links or "–"), _num(f["packets"]), _cell(damage, "error-text" if f.get("damage") else None)])
    shape = dict(summary.get("gwlb_shape", {}))
    deviations = ", ".join(f"{k} {v:,}" for k, v in shape.items() if k != "exact")
    roles = summary.get("roles", {})
    evidence = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in roles.get("evidence", {}).items())
    settings = report.settings
    facts = [
        ("Time span", escape(f"{_time(summary.get('first_ts_ns'))} .. {_time(summary.get('last_ts_ns'))} ({summary.get('duration_s', 0.0):,.3f} s)")),
        ("Packets", escape(f"{summary.get('packets', 0):,}")),
        ("By kind", _counts(summary.get("by_kind", {}))),
        ("By decode status", _counts(summary.get("by_status", {}))),
        ("GWLB shape", escape(f"exact {shape.get('exact', 0):,}") + (f'; <span class="warning-text">deviations: {escape(deviations)}</span>' if deviations else "")),
        ("Roles found by", escape(roles.get("method", "–")) + (f' <span class="muted">({escape(evidence)})</span>' if evidence else "")),
        ("Flow cookies", escape(f"{summary.get('cookies', 0):,}")),
    ]
    pairing = report.pairing or {}
    if pairing.get("legs"):
        outcomes = pairing.get("by_outcome", {})
        others = ", ".join(f"{k.replace('_', ' ')} {outcomes[k]:,}" for k in ("not_returned", "originated", "in_flight", "before_capture", "unknown") if outcomes.get(k))
        if pairing.get("ambiguous_paired"):
            others += (", " if others else "") + f"ambiguous {pairing['ambiguous_paired']:,}"
        facts.append(("Legs paired", escape(f"{outcomes.get('paired', 0):,} of {pairing['legs']:,} Geneve packets" + (f" ({others})" if others else ""))))
    if settings:
        facts.append(("Settings", escape(
            f"port {settings.get('port')}, pairing window {settings.get('window_s')} s, stickiness {settings.get('stickiness')}, "
            f"idle timeouts TCP {settings.get('tcp_idle_timeout_s')} s / other {settings.get('udp_idle_timeout_s')} s"
        )))
    role_rows = [
        [_cell(r["address"], "mono"), _cell("GWLB node" if r["role"] == "gwlb" else r["role"]), _num(r["packets_sent"]), _num(r["packets_received"])]
        for r in [*roles.get("gwlb_nodes", []), *roles.get("appliances", [])]
    ]
    body = (
        _facts(facts)
        + "<h3>Files</h3>" + (_table(["file", "format", "link types", "packets", "damage"], files, numeric=[3]) if files else _note("no files"))
        + "<h3>Addresses</h3>" + (_table(["address", "role", "Geneve sent", "Geneve received"], role_rows, numeric=[2, 3]) if role_rows else _note("no GWLB node or appliance found"))
    )
    return _section("summary", body)


def _swatch(colours: dict[str, str], name: str) -> str:
    colour = colours.get(name)
    return f'<span class="swatch" style="background:{escape(colour)}"></span>' if colour else ""


def _spread_rows(table: pd.DataFrame, first_cell) -> list[list[str]]:
    rows = []
    for name, row in table.iterrows():
        rows.append([
            first_cell(str(name)),
            _num(row["flows"]),
            _num(row["packets_in"]),
            _num(row["packets_in_share"], text=_percent(row["packets_in_share"])),
            _num(row["bytes_in"]),
            _num(row["returned_share"], text=_percent(row["returned_share"], 2)),
            _num(row["not_returned"]),
            _num(row["originated"]),
            _num(row["latency_p50_us"], 1),
            _num(row["latency_p99_us"], 1),
        ])
    return rows


SPREAD_HEADERS = ["flows", "packets in", "share", "inner bytes in", "returned", "not returned", "originated", "p50 µs", "p99 µs"]


def _appliances(report: Report, colours: dict[str, str]) -> str:
    table = report.appliances
    if table is None or table.empty:
        return _section("appliances", _note("No appliance carried Geneve traffic."))
    health = report.appliance_health
    rows = _spread_rows(table, lambda name: f'<td class="mono">{_swatch(colours, name)}{escape(name)}</td>')
    for row, name in zip(rows, table.index):
        probes = int(health.loc[name, "probes"]) if not health.empty and name in health.index else 0
        if probes:
            healthy = int(health.loc[name, "healthy"])
            row.append(_num(healthy / probes, text=f"{healthy}/{probes}"))
        else:
            row.append(_num(None))
    body = _table(["appliance", *SPREAD_HEADERS, "health checks ok"], rows, numeric=range(1, 11), sortable=True)
    return _section("appliances", body + _note("Shares are of ingress packets; returned is the share of ingress packets that came back; latency is ingress to egress on the appliance's own clock."))


def _endpoints(report: Report) -> str:
    table = report.endpoints
    if table is None or table.empty:
        return _section("endpoints", _note("No endpoint carried Geneve traffic."))
    details = {e["endpoint"]: e for e in report.summary.get("endpoints", [])}

    def first_cell(name: str) -> str:
        endpoint_id = details.get(name, {}).get("endpoint_id")
        return f'<td class="mono">{escape(name)}' + (f'<br><span class="muted">ID {escape(endpoint_id)}</span>' if endpoint_id else "") + "</td>"

    rows = _spread_rows(table, first_cell)
    for row, name in zip(rows, table.index):
        extra = details.get(str(name), {})
        row.append(_num(extra.get("cookies")))
        row.append(_cell(", ".join(extra.get("attachment_ids", [])) or "–", "mono"))
    body = _table(["endpoint", *SPREAD_HEADERS, "cookies", "attachment IDs"], rows, numeric=range(1, 11), sortable=True)
    return _section("endpoints", body)


def _gwlb_nodes(report: Report) -> str:
    table = report.gwlb_nodes
    if table is None or table.empty:
        return _section("gwlb-nodes", _note("No GWLB node sent Geneve traffic."))
    rows = _spread_rows(table, lambda name: _cell(name, "mono"))
    return _section("gwlb-nodes", _table(["GWLB node", *SPREAD_HEADERS], rows, numeric=range(1, 10), sortable=True))


def _distribution(report: Report) -> str:
    dist = report.distribution
    rows = []
    for group, label in (("appliances", "appliances"), ("gwlb_nodes", "GWLB nodes"), ("endpoints", "endpoints")):
        for metric, metric_label in (("flows", "flows"), ("packets_in", "packets in"), ("bytes_in", "inner bytes in")):
            f = dist.get(group, {}).get(metric, {})
            rows.append([
                _cell(label), _cell(metric_label), _num(f.get("jain_index"), 3), _num(f.get("max_mean_ratio"), 2),
                _num(f.get("cv"), 2), _num(f.get("chi2_p"), text="–" if _missing(f.get("chi2_p")) else f"{f['chi2_p']:.3g}"),
            ])
    sticky = dist.get("stickiness", {})
    facts = [("Flows on one appliance", escape(f"{sticky.get('on_one_appliance', 0):,} of {sticky.get('flows', 0):,}"))]
    expected = dist.get("appliances_expected")
    seen = dist.get("appliances_seen", 0)
    facts.append(("Appliances seen", escape(f"{seen}" + (f" of {expected} expected" if expected is not None else ""))))
    on_several = sticky.get("on_several", [])
    body = (
        _image(plots.plot_distribution(report), "bar charts of flows, packets and bytes per appliance and per endpoint", "Flows, packets and bytes per appliance and per endpoint; the dashed line is an even share.")
        + "<h3>Fairness</h3>"
        + _table(["spread over", "of", "Jain's index", "max / mean", "coefficient of variation", "χ² p (even)"], rows, numeric=range(2, 6))
        + _note("Jain's index is 1 for a perfectly even spread; a small χ² p-value says the spread is unlikely to be even by chance.")
        + _facts(facts)
        + (_keys_list(on_several, 0, ("flow seen on several appliances", "flows seen on several appliances")) if on_several else "")
    )
    return _section("distribution", body)


def _verdict_tag(verdict: str) -> str:
    css = "ok" if verdict == "symmetric" else FLOW_SEVERITY.get(verdict, "")
    return _tag(verdict.replace("_", " "), css)


def _symmetry(report: Report) -> str:
    flows = report.flows
    counts = flows["verdict"].value_counts() if len(flows) else pd.Series(dtype=int)
    order = [v for v in ("symmetric", *REASONS) if v in counts.index] + sorted(set(counts.index) - {"symmetric", *REASONS})
    total = int(counts.sum())
    rows = [[f"<td>{_verdict_tag(v)}</td>", _num(counts[v]), _num(counts[v] / total, text=_percent(counts[v] / total)), _cell(REASONS.get(v, "both directions crossed one appliance, every packet came back" if v == "symmetric" else ""))] for v in order]
    body = (
        (_table(["verdict", "flows", "share", "meaning"], rows, numeric=[1, 2]) if rows else _note("No flows."))
        + _note("A flow's verdict is the most severe of its reasons; the faulty-flow table lists them all.")
        + _image(plots.plot_symmetry(report), "bar chart of flows per symmetry verdict", "Flows by symmetry verdict.")
        + _image(plots.plot_timeline(report), "timeline of flows that moved between appliances or went one-sided or asymmetric",
                "Flows that moved, went one-sided or asymmetric: when they ran, and each packet's appliance (colour) and direction (filled: client to server).")
    )
    return _section("symmetry", body)


def _key_cell(key: str) -> str:
    """A flow key on two lines: the flow, then its endpoint."""
    flow, at, endpoint = key.partition(" @ ")
    second = f'<br><span class="muted">@ {escape(endpoint)}</span>' if at else ""
    return f'<td class="key" data-sort="{escape(key)}">{escape(flow)}{second}</td>'


def _faulty_flows(report: Report) -> str:
    flows = report.flows
    faulty = flows[flows["verdict"] != "symmetric"] if len(flows) else flows
    if faulty.empty:
        return _section("faulty-flows", '<p class="ok-text">No faulty flows: every flow is symmetric.</p>')
    rank = {v: k for k, v in enumerate(REASONS)}
    faulty = faulty.assign(_rank=faulty["verdict"].map(rank).fillna(len(rank))).sort_values(["_rank", "first_ns"], kind="stable")
    shown = faulty.head(MAX_FLOW_ROWS)
    start = report.summary.get("first_ts_ns") or 0
    rows = []
    for _, f in shown.iterrows():
        others = [r for r in str(f["reasons"]).split(",") if r and r != f["verdict"]]
        reasons = f'<b>{_verdict_tag(f["verdict"])}</b>' + "".join(f"<br>{_verdict_tag(r)}" for r in others)
        rows.append([
            _key_cell(f["key"]),
            f'<td data-sort="{int(f["_rank"]):02d} {escape(f["reasons"])}">{reasons}</td>',
            _cell(f["appliances"].replace(",", ", ") or "–", "mono"),
            _cell(f["cookies"].replace(",", ", ") or "–", "mono"),
            _num(f["fwd_packets"]),
            _num(f["rev_packets"]),
            _num(f["not_returned"]),
            _num(f["latency_p50_us"], 1),
            _num(f["latency_p99_us"], 1),
            _num((f["first_ns"] - start) / NS_PER_SECOND, 3),
        ])
    headers = ["flow key", "verdict, other reasons", "appliances", "cookies", "packets to server", "packets to client", "not returned", "latency p50 µs", "latency p99 µs", "start (s)"]
    note = f"{len(faulty):,} of {len(flows):,} flows are faulty" + (f"; the first {MAX_FLOW_ROWS:,} are listed (--export DIR writes them all)" if len(faulty) > MAX_FLOW_ROWS else "")
    body = _note(note + ". Click a column heading to sort.") + _table(headers, rows, numeric=range(4, 10), sortable=True, tall=True, css="flows")
    return _section("faulty-flows", body)


LATENCY_STATS = (("count", 0), ("min", 1), ("p50", 1), ("p90", 1), ("p99", 1), ("p99_9", 1), ("max", 1), ("mean", 1))


def _latency(report: Report, colours: dict[str, str]) -> str:
    latency = report.latency
    rows = []

    def add(scope: str, name: str, stats: dict, css: str = "mono") -> None:
        first = f'<td class="{css}">{_swatch(colours, name) if scope == "appliance" else ""}{escape(name)}</td>'
        rows.append([_cell(scope), first, *(_num(stats.get(k), d) for k, d in LATENCY_STATS)])

    add("all", "all appliances", latency.get("overall", {}), css="")
    for scope, group in (("appliance", "by_appliance"), ("endpoint", "by_endpoint"), ("GWLB node", "by_gwlb_node")):
        for name, stats in latency.get(group, {}).items():
            add(scope, str(name), stats)
    handshake = latency.get("handshake", {})
    hs_rows = [
        [_cell(label), _num(h.get("count")), _num(h.get("p50"), 1), _num(h.get("p99"), 1), _num(h.get("max"), 1)]
        for label, h in (("server side: SYN → SYN-ACK", handshake.get("server_rtt_us", {})), ("client side: SYN-ACK → ACK", handshake.get("client_rtt_us", {})))
    ]
    body = (
        _table(["scope", "name", "returned packets", "min µs", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "mean µs"], rows, numeric=range(2, 10), sortable=True)
        + _note("Dwell time of each returned packet in its appliance, ingress to egress, measured within one capture's clock.")
        + _image(plots.plot_latency(report), "histogram and cumulative distribution of latency per appliance", "Latency distribution per appliance (log scale).")
        + _image(plots.plot_latency_over_time(report), "p50 and p99 latency per second per appliance", "p50 and p99 latency per second of capture, per appliance.")
        + "<h3>TCP handshakes seen from the appliances</h3>"
        + _table(["round trip", "flows", "p50 µs", "p99 µs", "max µs"], hs_rows, numeric=range(1, 5))
    )
    return _section("latency", body)


def _status(value: int, bad: str = "error") -> str:
    return f'<span class="{bad}-text">{value:,}</span>' if value else f'<span class="ok-text">{value:,}</span>'


def _mtu(report: Report) -> str:
    mtu = report.mtu
    facts = [
        ("Inner packets over 8,500 bytes", _status(mtu.get("over_mtu_packets", 0)) + escape(f" in {_plural(mtu.get('over_mtu_flows', 0), 'flow')} (GWLB drops them, without ICMP)")),
        ("Outer IP fragments", _status(mtu.get("outer_fragment_packets", 0)) + escape(f" on the Geneve port, from {_plural(mtu.get('fragmented_legs', 0), 'fragmented return leg')} (GWLB does not reassemble)")),
        ("GSO/GRO super-packets", escape(f"{mtu.get('gso_super_packets', 0):,} in {_plural(mtu.get('gso_flows', 0), 'flow')} (a capture artefact, not a fault)")),
        ("Largest inner packet", escape(f"{mtu.get('largest_inner_bytes', 0):,} bytes")),
        ("Largest TCP MSS", escape(f"{mtu.get('largest_mss', 0):,}")),
    ]
    return _section("mtu", _facts(facts))


def _idle(report: Report) -> str:
    idle = report.idle
    facts = [
        ("Idle timeouts", escape(f"TCP {idle.get('tcp_timeout_s', 0):g} s, other protocols {idle.get('other_timeout_s', 0):g} s")),
        ("Flows silent past the timeout", _status(idle.get("flows_with_gaps", 0), "warning")),
        ("… back with a new cookie", escape(f"{idle.get('new_cookie_after', 0):,}")),
        ("… back on another appliance", escape(f"{idle.get('new_appliance_after', 0):,}")),
        ("… back with TCP that is not a SYN", escape(f"{idle.get('non_syn_after', 0):,}")),
    ]
    return _section("idle", _facts(facts) + _keys_list(idle.get("flows", []), EXAMPLE_KEYS, ("flow with an idle gap", "flows with an idle gap")))


def _health(report: Report) -> str:
    health = report.appliance_health
    probes = report.health_checks
    if probes is None or probes.empty:
        return _section("health-checks", _note(
            "No health checks in the captures. GWLB probes each appliance over TCP (port 80 by default, every 10 s); "
            "a capture filter of udp port 6081 leaves them out."
        ))
    rows = []
    for name, row in health.iterrows():
        interval = row.get("interval_s")
        rows.append([
            _cell(name, "mono"), _num(row["probes"]), _num(row["answered"]), _num(row["unanswered"]),
            _num(row["healthy"]), f'<td class="num" data-sort="{int(row["failed"])}">{_status(int(row["failed"]))}</td>', _num(interval, 1),
        ])
    start = report.summary.get("first_ts_ns") or 0
    probe_rows = [
        [_num((p["start_ns"] - start) / NS_PER_SECOND, 3), _cell(p["gwlb_node"], "mono"), _cell(p["appliance"], "mono"), _num(p["port"]),
         _cell("yes" if p["answered"] else "no"), _num(p["http_status"], text=str(int(p["http_status"])) if p["http_status"] else "–"),
         _cell("yes" if p["reset"] else "no"), f"<td>{_tag('healthy', 'ok') if p['healthy'] else _tag('failed', 'error')}</td>"]
        for _, p in probes.head(MAX_PROBE_ROWS).iterrows()
    ]
    more = f" (the first {MAX_PROBE_ROWS})" if len(probes) > MAX_PROBE_ROWS else ""
    body = (
        _table(["appliance", "probes", "answered", "unanswered", "healthy", "failed", "interval (s)"], rows, numeric=range(1, 7), sortable=True)
        + f"<details><summary>{escape(f'all {len(probes):,} probes{more}')}</summary>"
        + _table(["start (s)", "GWLB node", "appliance", "port", "answered", "HTTP", "reset", "result"], probe_rows, numeric=[0, 3, 5], sortable=True)
        + "</details>"
    )
    return _section("health-checks", body)


# --- the page -------------------------------------------------------------------------------------------------


def render_html(report: Report, stream: TextIO) -> None:
    """Write ``report`` to ``stream`` as one self-contained HTML page (title "gwcheck report")."""
    colours = plots.appliance_colours(report)
    files = [f["path"] for f in report.summary.get("files", [])]
    sections = [
        _verdict(report),
        _findings(report),
        _summary(report),
        _appliances(report, colours),
        _endpoints(report),
        _gwlb_nodes(report),
        _distribution(report),
        _symmetry(report),
        _faulty_flows(report),
        _latency(report, colours),
        _mtu(report),
        _idle(report),
        _health(report),
    ]
    nav = "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title in SECTIONS)
    stream.write(
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="gwcheck {escape(__version__)}">\n'
        "<title>gwcheck report</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n"
        f'<header class="top"><div class="inner"><h1>gwcheck report</h1><span class="files">{escape(", ".join(files) or "no captures")}</span></div></header>\n'
        f'<nav aria-label="sections"><div class="inner">{nav}</div></nav>\n'
        "<main>\n" + "\n".join(sections) + "\n</main>\n"
        f"<footer>gwcheck {escape(__version__)} · AWS Gateway Load Balancer analysis of appliance captures</footer>\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
