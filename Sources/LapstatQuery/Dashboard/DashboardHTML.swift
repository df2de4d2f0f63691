// The dashboard page (HTML); __VERSION__ is replaced by the assets' content hash.
// Served by Dashboard.swift; edit here, no build step. Compiled into the binary so
// `lapstat query` serves the page from any working directory.
extension Dashboard {
    static let html: String = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lapstat dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard.css?v=__VERSION__">
<script src="/dashboard.js?v=__VERSION__" defer></script>
</head>
<body>
<header class="bar">
  <h1>lapstat</h1>
  <label class="field">App <select id="app" aria-label="app"></select></label>
  <details id="reqbox" class="picker">
    <summary id="reqsummary">All requests</summary>
    <div class="menu">
      <div class="menu-actions"><button type="button" id="reqall">All</button><button type="button" id="reqnone">Clear</button></div>
      <div id="reqlist"></div>
    </div>
  </details>
  <div class="seg" id="ranges" role="group" aria-label="time range"></div>
  <div class="custom">
    <input type="datetime-local" id="from" step="60" aria-label="from">
    <span>→</span>
    <input type="datetime-local" id="to" step="60" aria-label="to">
    <button type="button" id="apply">Apply</button>
  </div>
  <label class="toggle" title="logarithmic latency axis"><input type="checkbox" id="log"> log</label>
  <button type="button" id="live" class="live">Live</button>
  <span id="status" class="status"></span>
</header>

<section class="cards" id="cards">
  <div class="card" id="c-window"><div class="k">Window</div><div class="v" id="win-v">–</div><div class="s" id="win-s"></div></div>
  <div class="card" id="c-samples"><div class="k">Samples in window</div><div class="v" id="samples-v">–</div><div class="s" id="samples-s"></div></div>
  <div class="card" id="c-complete"><div class="k">Completeness</div><div class="v" id="comp-v">–</div><div class="s" id="comp-s"></div></div>
  <div class="card" id="c-loss"><div class="k">Lost or pending</div><div class="v" id="loss-v">–</div><div class="s" id="loss-s"></div></div>
  <div class="card" id="c-store"><div class="k">Storage</div><div class="v" id="store-v">–</div><div class="s" id="store-s"></div></div>
</section>

<main class="grid">
  <section class="panel wide" id="p-latency">
    <div class="ph"><h2>Latency percentiles</h2><span class="unit">ms</span>
      <label class="qsel" id="qsel-wrap">quantile <select id="qsel"><option value="0.5">p50</option><option value="0.9">p90</option><option value="0.99" selected>p99</option><option value="0.999">p99.9</option></select></label>
      <div class="legend" id="lat-legend"></div></div>
    <div class="chart"><canvas id="lat" height="300"></canvas></div>
    <div class="note" id="lat-note"></div>
  </section>
  <section class="panel" id="p-heatmap">
    <div class="ph"><h2>Latency heatmap</h2><span class="unit">samples per bucket</span><div class="legend" id="heat-legend"></div></div>
    <div class="chart"><canvas id="heat" height="240"></canvas></div>
    <div class="note" id="heat-note"></div>
  </section>
  <section class="panel" id="p-throughput">
    <div class="ph"><h2>Throughput</h2><span class="unit">samples/s</span><div class="legend" id="thr-legend"></div></div>
    <div class="chart"><canvas id="thr" height="240"></canvas></div>
    <div class="note" id="thr-note"></div>
  </section>
  <section class="panel wide" id="p-table">
    <div class="ph"><h2>Requests by p99</h2><span class="unit">latency in ms over the window; click a row to chart it alone</span></div>
    <table id="reqtable">
      <thead><tr><th class="l">Request</th><th>Samples</th><th>Rate /s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>Max</th><th class="l">p99 over time</th></tr></thead>
      <tbody></tbody>
    </table>
    <div class="note" id="table-note"></div>
  </section>
  <section class="panel wide" id="p-top">
    <div class="ph"><h2>Slowest requests, all apps</h2><span class="unit">p99 in ms</span></div>
    <table id="toptable"><thead><tr><th class="l">App</th><th class="l">Request</th><th>Samples</th><th>p99</th></tr></thead><tbody></tbody></table>
    <div class="note" id="top-note"></div>
  </section>
</main>
<div id="tip" class="tip" hidden></div>
<footer class="foot">Quantiles come from merged histograms (relative error ≤ 0.55%), never averaged. Times are local; the API uses unix ms.</footer>
</body>
</html>
"""#
}
