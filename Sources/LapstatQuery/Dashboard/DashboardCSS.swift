// The dashboard's style sheet.
// Served by Dashboard.swift; edit here, no build step. Compiled into the binary so
// `lapstat query` serves the page from any working directory.
extension Dashboard {
    static let css: String = #"""
:root {
  --bg: #0d1117; --panel: #161b22; --line: #30363d; --grid: #21262d;
  --text: #e6edf3; --muted: #9da7b3; --accent: #58a6ff;
  --good: #3fb950; --warn: #d29922; --bad: #f85149;
  font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  font-size: 14px; color: var(--text); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); }
button, select, input { font: inherit; color: var(--text); background: #21262d; border: 1px solid var(--line); border-radius: 6px; padding: 4px 8px; }
button { cursor: pointer; }
button:hover, select:hover { border-color: #8b949e; }
input[type=datetime-local] { color-scheme: dark; width: 14.2em; }
.bar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 10px; padding: 10px 16px; background: #010409; border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 5; }
.bar h1 { font-size: 18px; margin: 0 6px 0 0; letter-spacing: .5px; color: var(--accent); }
.field { display: flex; align-items: center; gap: 6px; color: var(--muted); }
.field select { min-width: 7.5em; }
.picker { position: relative; }
.picker summary { list-style: none; cursor: pointer; border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; background: #21262d; max-width: 22em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.picker summary::after { content: " ▾"; color: var(--muted); }
.picker .menu { position: absolute; top: 110%; left: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px; min-width: 18em; max-height: 60vh; overflow: auto; box-shadow: 0 8px 24px #000a; z-index: 10; }
.menu-actions { display: flex; gap: 6px; margin-bottom: 6px; }
#reqlist label { display: block; padding: 3px 2px; white-space: nowrap; cursor: pointer; }
#reqlist label:hover { background: #21262d; }
.seg { display: inline-flex; }
.seg button { border-radius: 0; margin-left: -1px; }
.seg button:first-child { border-radius: 6px 0 0 6px; }
.seg button:last-child { border-radius: 0 6px 6px 0; }
.seg button.on { background: #1f6feb; border-color: #1f6feb; color: #fff; }
.custom { display: flex; align-items: center; gap: 6px; color: var(--muted); }
.toggle { color: var(--muted); display: flex; align-items: center; gap: 4px; cursor: pointer; }
.live.on { background: #8e1519; border-color: var(--bad); color: #fff; }
.live.on::before { content: "● "; color: #ff7b72; }
.status { color: var(--muted); font-size: 12px; margin-left: auto; white-space: nowrap; }
.status.err { color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 12px; padding: 12px 16px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; min-width: 0; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .4px; }
.card .v { font-size: 22px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.card .s { color: var(--muted); font-size: 12px; margin-top: 2px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.good { color: var(--good); } .warn { color: var(--warn); } .bad { color: var(--bad); }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; padding: 12px 16px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; min-width: 0; }
.panel.wide { grid-column: 1 / -1; }
.ph { display: flex; align-items: baseline; flex-wrap: wrap; gap: 4px 10px; margin-bottom: 6px; }
.ph h2 { font-size: 15px; margin: 0; }
.unit { color: var(--muted); font-size: 12px; }
.legend { margin-left: auto; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--text); }
.legend span { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.legend i { display: inline-block; width: 14px; height: 3px; border-radius: 2px; }
.legend .ramp { width: 90px; height: 10px; border-radius: 2px; }
.qsel { color: var(--muted); font-size: 12px; }
.qsel select { padding: 1px 4px; font-size: 12px; }
.chart { position: relative; }
.chart canvas { display: block; width: 100%; }
.note { color: var(--muted); font-size: 12px; margin-top: 4px; min-height: 1em; }
.note.err { color: var(--warn); }
.panel.unavailable .chart { display: none; }
.panel.unavailable .note { font-size: 13px; padding: 24px 8px; text-align: center; border: 1px dashed var(--line); border-radius: 6px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; text-align: right; border-bottom: 1px solid var(--grid); white-space: nowrap; }
th { color: var(--muted); font-weight: 500; font-size: 12px; text-transform: uppercase; letter-spacing: .3px; }
th.l, td.l { text-align: left; }
td.req { max-width: 28em; overflow: hidden; text-overflow: ellipsis; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
#reqtable tbody tr { cursor: pointer; }
#reqtable tbody tr:hover { background: #1c2128; }
#reqtable tbody tr.sel { background: #1f6feb26; }
#reqtable tbody tr.sel td.req { color: #79c0ff; }
td.p99 { font-weight: 600; }
td canvas { display: block; }
.tip { position: fixed; pointer-events: none; background: #010409ee; border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; font-size: 12px; z-index: 20; font-variant-numeric: tabular-nums; }
.tip b { display: block; margin-bottom: 2px; }
.tip i { display: inline-block; width: 10px; height: 3px; margin-right: 5px; vertical-align: middle; }
.foot { color: var(--muted); font-size: 12px; padding: 0 16px 16px; }
@media (max-width: 1000px) { .grid { grid-template-columns: 1fr; } .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
"""#
}
