// The dashboard's script: fetches the JSON API and draws the charts on <canvas>.
// Served by Dashboard.swift; edit here, no build step. Compiled into the binary so
// `lapstat query` serves the page from any working directory.
extension Dashboard {
    static let javascript: String = #"""
// lapstat dashboard: plain JavaScript, no dependencies, charts drawn on <canvas>.
// Every panel asks the query service's JSON API; a panel whose endpoint is missing
// (HTTP 404) is replaced by a note instead of breaking the page.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const QK = ['0.5', '0.9', '0.99', '0.999'];
  const QNAME = { '0.5': 'p50', '0.9': 'p90', '0.99': 'p99', '0.999': 'p99.9' };
  const QCOLOR = { '0.5': '#58a6ff', '0.9': '#3fb950', '0.99': '#f0883e', '0.999': '#ff6e9c' };
  const PALETTE = ['#58a6ff', '#f0883e', '#3fb950', '#d2a8ff', '#ff6e9c', '#e3b341', '#39c5cf', '#f85149', '#a5d6ff', '#7ee787'];
  const RANGES = [['5m', 300e3], ['15m', 900e3], ['1h', 3600e3], ['6h', 21600e3], ['24h', 86400e3], ['7d', 604800e3]];
  const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);
  const MAX_LINES = 8;

  const state = {
    app: null, requests: new Set(), range: '1h', from: null, to: null,
    log: false, live: false, q: '0.99',
  };
  const view = { win: null, apps: new Map(), series: [], gen: 0, busy: false, lastRefresh: 0 };
  const live = { es: null, timer: null, events: 0, since: 0, pending: null, mode: '' };

  // ---------- formatting ----------
  function fmtMs(v) {
    if (v == null || !isFinite(v)) return '–';
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    if (v >= 1) return v.toFixed(2);
    return v.toFixed(3);
  }
  function fmtDur(v) { // axis labels with their unit
    if (v >= 1000) return trim(v / 1000) + ' s';
    return trim(v) + ' ms';
  }
  function trim(x) { return String(+x.toPrecision(3)); }
  function fmtCount(n) {
    if (n == null) return '–';
    if (n >= 1e9) return trim(n / 1e9) + 'G';
    if (n >= 1e6) return trim(n / 1e6) + 'M';
    if (n >= 1e4) return trim(n / 1e3) + 'k';
    return String(Math.round(n));
  }
  const fmtInt = (n) => (n == null ? '–' : Math.round(n).toLocaleString('en-US'));
  function fmtRate(r) {
    if (r == null || !isFinite(r)) return '–';
    if (r >= 1e4) return trim(r / 1e3) + 'k';
    if (r >= 100) return r.toFixed(0);
    if (r >= 1) return r.toFixed(1);
    return r.toFixed(3);
  }
  function fmtSpan(ms) {
    const s = ms / 1000;
    if (s < 60) return s + ' s';
    if (s < 3600) return trim(s / 60) + ' min';
    if (s < 86400) return trim(s / 3600) + ' h';
    return trim(s / 86400) + ' d';
  }
  const pad = (n) => String(n).padStart(2, '0');
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function fmtTime(t, withSeconds, withDate) {
    const d = new Date(t);
    let s = pad(d.getHours()) + ':' + pad(d.getMinutes());
    if (withSeconds) s += ':' + pad(d.getSeconds());
    if (withDate) s = MONTHS[d.getMonth()] + ' ' + d.getDate() + ' ' + s;
    return s;
  }
  function toLocalInput(t) {
    const d = new Date(t);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

  // ---------- API ----------
  function qs(o) {
    return Object.entries(o).filter(([, v]) => v != null && v !== '').map(([k, v]) => k + '=' + encodeURIComponent(v)).join('&');
  }
  async function api(path) {
    try {
      const r = await fetch(path, { cache: 'no-store' });
      let json = null;
      try { json = await r.json(); } catch (e) { /* not JSON */ }
      return { ok: r.ok, status: r.status, json };
    } catch (e) {
      return { ok: false, status: 0, json: null, error: String(e) };
    }
  }
  function why(r) {
    if (!r) return 'no answer';
    if (r.status === 0) return 'query service unreachable';
    return 'HTTP ' + r.status + (r.json && r.json.error ? ': ' + r.json.error : '');
  }

  // ---------- time window ----------
  function rangeMs(name) { const r = RANGES.find((x) => x[0] === name); return r ? r[1] : 3600e3; }
  function pickStep(span) { return STEPS.find((s) => span / s <= 150) || STEPS[STEPS.length - 1]; }
  function computeWindow() {
    let from, to;
    if (state.range === 'custom' && state.from != null && state.to != null && state.from < state.to) {
      from = state.from; to = state.to;
    } else {
      if (state.range === 'custom') state.range = '1h';
      to = Date.now(); from = to - rangeMs(state.range);
    }
    const step = pickStep(to - from);
    from = Math.floor(from / step) * step;
    to = Math.ceil(to / step) * step;
    return { from, to, step, n: Math.round((to - from) / step) };
  }
  function grid(points, f, w) {
    const a = new Array(w.n).fill(null);
    for (const p of points || []) {
      const i = Math.round((p.t - w.from) / w.step);
      if (i < 0 || i >= w.n) continue;
      const v = f(p);
      a[i] = v == null || !isFinite(v) ? null : v;
    }
    return a;
  }

  // ---------- URL hash: the view survives a reload and can be shared ----------
  function saveHash() {
    const p = new URLSearchParams();
    if (state.app) p.set('app', state.app);
    for (const r of state.requests) p.append('request', r);
    p.set('range', state.range);
    if (state.range === 'custom') { p.set('from', state.from); p.set('to', state.to); }
    if (state.log) p.set('log', '1');
    if (state.live) p.set('live', '1');
    if (state.q !== '0.99') p.set('q', state.q);
    history.replaceState(null, '', '#' + p.toString());
  }
  function loadHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    state.app = p.get('app');
    state.requests = new Set(p.getAll('request'));
    const range = p.get('range');
    if (range === 'custom' && +p.get('from') < +p.get('to')) { state.range = 'custom'; state.from = +p.get('from'); state.to = +p.get('to'); }
    else if (RANGES.some((r) => r[0] === range)) state.range = range;
    state.log = p.get('log') === '1';
    state.live = p.get('live') === '1';
    if (QK.includes(p.get('q'))) state.q = p.get('q');
  }

  // ---------- canvas charts ----------
  function setupCanvas(c) {
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = +c.getAttribute('height');
    c.style.height = h + 'px';
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = '12px system-ui, "DejaVu Sans", sans-serif';
    return { ctx, w, h };
  }
  const TICKS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800].map((s) => s * 1000);
  function timeTicks(w, width) {
    const long = w.to - w.from > 86400e3;
    const minPx = long ? 110 : 80;
    const span = w.to - w.from;
    const every = TICKS.find((t) => (span / t) * minPx <= width) || TICKS[TICKS.length - 1];
    const tz = new Date(w.from).getTimezoneOffset() * 60e3;
    const ticks = [];
    let t = Math.ceil((w.from - tz) / every) * every + tz;
    for (let i = 0; i < 400 && t <= w.to; i++, t += every) ticks.push(t);
    return { ticks, seconds: every < 60e3, date: long };
  }
  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }
  function yScale(values, log, height) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v != null && isFinite(v) && (!log || v > 0)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (!isFinite(lo)) { lo = log ? 1 : 0; hi = log ? 10 : 1; }
    if (log) {
      const a = Math.floor(Math.log10(lo)), b = Math.max(a + 1, Math.ceil(Math.log10(hi)));
      const ticks = [];
      const mults = b - a <= 2 ? [1, 2, 5] : b - a <= 4 ? [1, 3] : [1];
      for (let e = a; e <= b; e++) for (const m of mults) { const v = m * Math.pow(10, e); if (v <= Math.pow(10, b) * 1.0001) ticks.push(v); }
      return { min: Math.pow(10, a), max: Math.pow(10, b), ticks, log: true };
    }
    hi = hi <= 0 ? 1 : hi;
    const step = niceStep(hi * 1.08 / Math.max(2, Math.floor(height / 45)));
    const max = Math.ceil(hi * 1.08 / step) * step;
    const ticks = [];
    for (let v = 0; v <= max + step / 2 && ticks.length < 30; v += step) ticks.push(+v.toPrecision(10));
    return { min: 0, max, ticks, log: false };
  }

  // A time-series line chart. opts: {w, lines:[{name,color,values}], log, fmtY, hover}
  function lineChart(canvas, opts) {
    canvas._opts = opts;
    const { ctx, w: W, h: H } = setupCanvas(canvas);
    const w = opts.w;
    const all = [];
    for (const l of opts.lines) for (const v of l.values) if (v != null) all.push(v);
    const M = { l: 64, r: 14, t: 10, b: 24 };
    const pw = W - M.l - M.r, ph = H - M.t - M.b;
    const ys = yScale(all, opts.log, ph);
    const xOf = (t) => M.l + ((t - w.from) / (w.to - w.from)) * pw;
    const yOf = ys.log
      ? (v) => M.t + ph - ((Math.log10(Math.max(v, ys.min)) - Math.log10(ys.min)) / (Math.log10(ys.max) - Math.log10(ys.min))) * ph
      : (v) => M.t + ph - ((v - ys.min) / (ys.max - ys.min)) * ph;
    canvas._geo = { M, pw, ph, xOf, w };
    // grid and y labels
    ctx.strokeStyle = '#21262d'; ctx.fillStyle = '#9da7b3'; ctx.lineWidth = 1;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    let lastY = Infinity;
    for (const v of ys.ticks) {
      const y = Math.round(yOf(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(M.l, y); ctx.lineTo(M.l + pw, y); ctx.stroke();
      if (lastY - y >= 14) { ctx.fillText(opts.fmtY(v), M.l - 6, y); lastY = y; }
    }
    // x ticks
    const tt = timeTicks(w, pw);
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    for (const t of tt.ticks) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.strokeStyle = '#21262d';
      ctx.beginPath(); ctx.moveTo(x, M.t); ctx.lineTo(x, M.t + ph); ctx.stroke();
      ctx.fillStyle = '#9da7b3';
      ctx.fillText(fmtTime(t, tt.seconds, tt.date), x, M.t + ph + 6);
    }
    ctx.strokeStyle = '#484f58';
    ctx.beginPath(); ctx.moveTo(M.l + 0.5, M.t); ctx.lineTo(M.l + 0.5, M.t + ph + 0.5); ctx.lineTo(M.l + pw, M.t + ph + 0.5); ctx.stroke();
    if (!all.length) {
      ctx.fillStyle = '#9da7b3'; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
      ctx.font = '14px system-ui, sans-serif';
      ctx.fillText('no samples in this window', M.l + pw / 2, M.t + ph / 2);
      return;
    }
    // lines (gaps where a step holds no samples)
    ctx.save();
    ctx.beginPath(); ctx.rect(M.l, M.t - 2, pw, ph + 4); ctx.clip();
    for (const l of opts.lines) { // later lines on top: p99.9 (dashed) over p99 where they coincide
      ctx.strokeStyle = l.color; ctx.fillStyle = l.color; ctx.lineWidth = 2; ctx.lineJoin = 'round';
      ctx.setLineDash(l.dash || []);
      if (opts.area) { ctx.globalAlpha = 0.18; fillArea(ctx, l.values, w, xOf, yOf, ys); ctx.globalAlpha = 1; }
      ctx.beginPath();
      let open = false;
      l.values.forEach((v, i) => {
        if (v == null) { open = false; return; }
        const x = xOf(w.from + (i + 0.5) * w.step), y = yOf(v);
        const lonely = (i === 0 || l.values[i - 1] == null) && (i === l.values.length - 1 || l.values[i + 1] == null);
        if (lonely) { ctx.fillRect(x - 2, y - 2, 4, 4); open = false; return; }
        if (open) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        open = true;
      });
      ctx.stroke();
      ctx.setLineDash([]);
    }
    // hover crosshair
    if (opts.hover != null) {
      const x = Math.round(xOf(w.from + (opts.hover + 0.5) * w.step)) + 0.5;
      ctx.strokeStyle = '#e6edf3aa'; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x, M.t); ctx.lineTo(x, M.t + ph); ctx.stroke();
      for (const l of opts.lines) {
        const v = l.values[opts.hover];
        if (v == null) continue;
        ctx.fillStyle = l.color; ctx.beginPath(); ctx.arc(x, yOf(v), 3.5, 0, 7); ctx.fill();
      }
    }
    ctx.restore();
  }
  function fillArea(ctx, values, w, xOf, yOf, ys) {
    let start = -1;
    const base = yOf(ys.log ? ys.min : 0);
    const flush = (end) => {
      if (start < 0) return;
      ctx.beginPath();
      ctx.moveTo(xOf(w.from + (start + 0.5) * w.step), base);
      for (let i = start; i <= end; i++) ctx.lineTo(xOf(w.from + (i + 0.5) * w.step), yOf(values[i]));
      ctx.lineTo(xOf(w.from + (end + 0.5) * w.step), base);
      ctx.fill();
      start = -1;
    };
    values.forEach((v, i) => { if (v == null) flush(i - 1); else if (start < 0) start = i; });
    flush(values.length - 1);
  }

  // Hover read-out for line charts.
  function attachHover(canvas) {
    const tip = $('tip');
    canvas.addEventListener('mousemove', (e) => {
      const o = canvas._opts, g = canvas._geo;
      if (!o || !g) return;
      const rect = canvas.getBoundingClientRect();
      const x = e.clientX - rect.left;
      const t = g.w.from + ((x - g.M.l) / g.pw) * (g.w.to - g.w.from);
      const i = Math.floor((t - g.w.from) / g.w.step);
      if (i < 0 || i >= g.w.n) { tip.hidden = true; return; }
      if (o.hover !== i) { o.hover = i; lineChart(canvas, o); }
      let html = '<b>' + fmtTime(g.w.from + i * g.w.step, true, true) + ' + ' + fmtSpan(g.w.step) + '</b>';
      for (const l of o.lines) html += '<div><i style="background:' + l.color + '"></i>' + esc(l.name) + ': ' + (l.values[i] == null ? 'no data' : o.fmtTip(l.values[i])) + '</div>';
      tip.innerHTML = html;
      tip.hidden = false;
      const left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      tip.style.left = left + 'px'; tip.style.top = (e.clientY + 14) + 'px';
    });
    canvas.addEventListener('mouseleave', () => {
      tip.hidden = true;
      if (canvas._opts) { canvas._opts.hover = null; lineChart(canvas, canvas._opts); }
    });
  }

  function sparkline(canvas, values, color) {
    const { ctx, w: W, h: H } = setupCanvas(canvas);
    const vs = values.filter((v) => v != null);
    if (!vs.length) return;
    let lo = Math.min(...vs), hi = Math.max(...vs);
    if (state.log) { lo = Math.log10(Math.max(lo, 1e-3)); hi = Math.log10(Math.max(hi, 1e-3)); }
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
    const y = (v) => { const u = state.log ? Math.log10(Math.max(v, 1e-3)) : v; return H - 2 - ((u - lo) / (hi - lo)) * (H - 4); };
    const x = (i) => 1 + (i + 0.5) * ((W - 2) / values.length);
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1.5;
    ctx.beginPath();
    let open = false;
    values.forEach((v, i) => {
      if (v == null) { open = false; return; }
      if (open) ctx.lineTo(x(i), y(v)); else { ctx.moveTo(x(i), y(v)); ctx.fillRect(x(i) - 0.75, y(v) - 0.75, 1.5, 1.5); }
      open = true;
    });
    ctx.stroke();
  }

  // ---------- heatmap ----------
  // /api/v1/heatmap: top-level `buckets` [{lower_ms, upper_ms}], the same for every series
  // and step, and per series `points` [{t, counts[]}]. Counts of several series add up.
  function parseHeatmap(json, keep) {
    if (!json || !Array.isArray(json.buckets) || !json.buckets.length) return null;
    const bounds = json.buckets.map((b) => [+(b.lower_ms ?? b.lower ?? 0), +(b.upper_ms ?? b.upper ?? b.le)]);
    const cells = new Map(); // t -> counts[]
    for (const s of json.series || []) {
      if (keep && !keep(s)) continue;
      for (const p of s.points || []) {
        if (!Array.isArray(p.counts)) continue;
        const acc = cells.get(p.t) || new Array(bounds.length).fill(0);
        p.counts.forEach((v, i) => { if (i < acc.length) acc[i] += +v || 0; });
        cells.set(p.t, acc);
      }
    }
    return { bounds, cells };
  }
  function heatColor(f) { // 0..1 → dark blue → teal → yellow
    const stops = [[13, 17, 23], [22, 60, 120], [31, 111, 235], [57, 197, 207], [227, 179, 65], [255, 240, 160]];
    const x = Math.max(0, Math.min(1, f)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(x)), u = x - i;
    const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * u));
    return 'rgb(' + c.join(',') + ')';
  }
  function drawHeatmap(canvas, hm, w) {
    const { ctx, w: W, h: H } = setupCanvas(canvas);
    const M = { l: 64, r: 14, t: 10, b: 24 };
    const pw = W - M.l - M.r, ph = H - M.t - M.b;
    // Bucket i spans bounds[i] = [lower, upper] ms; rows with any count decide the y range.
    let lo = Infinity, hi = 0, max = 0;
    for (const c of hm.cells.values()) c.forEach((v, i) => {
      if (v > 0) { lo = Math.min(lo, i); hi = Math.max(hi, i); max = Math.max(max, v); }
    });
    const lower = (i) => (hm.bounds[i][0] > 0 ? hm.bounds[i][0] : hm.bounds[i][1] / 2);
    const vals = isFinite(lo) ? [Math.max(lower(lo), 1e-3), hm.bounds[hi][1]] : [];
    const ys = yScale(vals, true, ph);
    const yOf = (v) => M.t + ph - ((Math.log10(Math.max(v, ys.min)) - Math.log10(ys.min)) / (Math.log10(ys.max) - Math.log10(ys.min))) * ph;
    const xOf = (t) => M.l + ((t - w.from) / (w.to - w.from)) * pw;
    ctx.fillStyle = '#0d1117'; ctx.fillRect(M.l, M.t, pw, ph);
    const lmax = Math.log1p(max);
    for (const [t, c] of hm.cells) {
      const x0 = xOf(t), x1 = xOf(t + w.step);
      c.forEach((v, i) => {
        if (!(v > 0)) return;
        const y0 = yOf(hm.bounds[i][1]), y1 = yOf(Math.max(lower(i), ys.min));
        ctx.fillStyle = heatColor(0.12 + 0.88 * Math.log1p(v) / lmax);
        ctx.fillRect(x0, y0, Math.max(1, x1 - x0 + 0.5), Math.max(1, y1 - y0 + 0.5));
      });
    }
    ctx.fillStyle = '#9da7b3'; ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    let lastY = Infinity;
    for (const v of ys.ticks) { const y = yOf(v); if (lastY - y >= 14) { ctx.fillText(fmtDur(v), M.l - 6, y); lastY = y; } }
    const tt = timeTicks(w, pw);
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    for (const t of tt.ticks) ctx.fillText(fmtTime(t, tt.seconds, tt.date), xOf(t), M.t + ph + 6);
    ctx.strokeStyle = '#484f58';
    ctx.beginPath(); ctx.moveTo(M.l + 0.5, M.t); ctx.lineTo(M.l + 0.5, M.t + ph + 0.5); ctx.lineTo(M.l + pw, M.t + ph + 0.5); ctx.stroke();
    if (!max) { ctx.textAlign = 'center'; ctx.textBaseline = 'middle'; ctx.fillText('no samples in this window', M.l + pw / 2, M.t + ph / 2); }
    return max;
  }

  // ---------- panels ----------
  function panelState(id, unavailable, note, isErr) {
    const p = $(id);
    p.classList.toggle('unavailable', !!unavailable);
    const n = p.querySelector('.note');
    n.textContent = note || '';
    n.classList.toggle('err', !!isErr);
  }
  function legend(el, items) {
    el.innerHTML = items.map((it) => '<span><i style="background:' + it.color + '"></i>' + esc(it.name) + '</span>').join('');
  }
  function selectedSeries() {
    const s = view.series;
    if (!state.requests.size) return s;
    return s.filter((x) => state.requests.has(x.request));
  }
  function q(s, k) { const v = s.quantiles && s.quantiles[k]; return v == null ? null : v; }

  function renderLatency() {
    const w = view.win, sel = selectedSeries();
    const c = $('lat');
    let lines, note = '';
    if (sel.length === 1) {
      $('qsel-wrap').hidden = true;
      lines = QK.map((k) => ({ name: QNAME[k], color: QCOLOR[k], dash: k === '0.999' ? [6, 4] : null, values: grid(sel[0].points, (p) => q(p, k), w) }));
      const perStep = sel[0].count / Math.max(1, (sel[0].points || []).length);
      note = sel[0].request + ' · about ' + fmtCount(perStep) + ' samples per ' + fmtSpan(w.step) + ' step' +
        (perStep < 1000 ? ' — with fewer than 1,000 samples in a step, p99.9 is close to the step\'s maximum' : '');
    } else {
      $('qsel-wrap').hidden = false;
      const ranked = sel.slice().sort((a, b) => (q(b, state.q) ?? -1) - (q(a, state.q) ?? -1));
      lines = ranked.slice(0, MAX_LINES).map((s, i) => ({ name: s.request, color: PALETTE[i % PALETTE.length], values: grid(s.points, (p) => q(p, state.q), w) }));
      note = QNAME[state.q] + ' per request' + (ranked.length > MAX_LINES ? ' — the ' + MAX_LINES + ' slowest of ' + ranked.length + ' shown' : '') +
        '. Pick one request to see p50, p90, p99 and p99.9 together.';
    }
    legend($('lat-legend'), lines);
    lineChart(c, { w, lines, log: state.log, fmtY: fmtDur, fmtTip: (v) => fmtMs(v) + ' ms', hover: null });
    panelState('p-latency', false, sel.length ? note + (state.log ? ' (log scale)' : '') : 'No samples for this app and request in the window.');
  }

  function renderThroughput() {
    const w = view.win, sel = selectedSeries();
    const total = new Array(w.n).fill(null);
    for (const s of sel) {
      grid(s.points, (p) => (p.rate != null ? p.rate : p.count / (w.step / 1000)), w).forEach((v, i) => {
        if (v != null) total[i] = (total[i] || 0) + v;
      });
    }
    // The step that holds "now" (or ended less than a second ago) is still filling: not drawn.
    const open = Math.floor((Date.now() - 1000 - w.from) / w.step);
    for (let i = Math.max(0, open); i < w.n; i++) total[i] = null;
    const lines = [{ name: sel.length === 1 ? sel[0].request : (state.requests.size ? sel.length + ' requests' : 'all requests'), color: '#39c5cf', values: total }];
    legend($('thr-legend'), lines);
    lineChart($('thr'), { w, lines, log: false, area: true, fmtY: (v) => (v >= 1e4 ? trim(v / 1e3) + 'k' : trim(v)) + '/s', fmtTip: (v) => fmtRate(v) + ' samples/s', hover: null });
    panelState('p-throughput', false, 'Samples per second in each ' + fmtSpan(w.step) + ' step (sample rates applied); the step still filling is not drawn.');
  }

  async function renderHeatmap(gen) {
    const w = view.win, sel = selectedSeries();
    const params = { app: state.app, from: w.from, to: w.to, step: w.step };
    if (sel.length === 1) params.request = sel[0].request;
    const r = await api('/api/v1/heatmap?' + qs(params));
    if (gen !== view.gen) return;
    if (r.status === 404 && !(r.json && r.json.error && !/endpoint/.test(r.json.error))) {
      $('heat-legend').innerHTML = '';
      panelState('p-heatmap', true, 'The heatmap needs /api/v1/heatmap, which this query service does not offer yet.');
      return;
    }
    if (!r.ok) { panelState('p-heatmap', true, 'Heatmap unavailable: ' + why(r), true); return; }
    const hm = parseHeatmap(r.json, params.request || !state.requests.size ? null : (x) => state.requests.has(x.request));
    if (!hm) { panelState('p-heatmap', true, 'Heatmap answer not understood (no buckets).', true); return; }
    const max = drawHeatmap($('heat'), hm, w);
    $('heat-legend').innerHTML = '<span>1</span><span><i class="ramp" style="background:linear-gradient(90deg,' +
      [0.12, 0.3, 0.5, 0.7, 0.85, 1].map(heatColor).join(',') + ')"></i></span><span>' + fmtCount(max) + '</span>';
    panelState('p-heatmap', false, (sel.length === 1 ? sel[0].request : state.requests.size ? sel.length + ' requests' : 'all requests of ' + state.app) + ': samples per latency bucket (log scale) in each ' + fmtSpan(w.step) + ' step; brighter is more.');
  }

  function renderTable() {
    const w = view.win, tb = $('reqtable').querySelector('tbody');
    const rows = view.series.slice().sort((a, b) => (q(b, '0.99') ?? -1) - (q(a, '0.99') ?? -1));
    const secs = (w.to - w.from) / 1000;
    const t = $('reqtable');
    t.dataset.app = state.app || '';
    t.dataset.from = w.from; t.dataset.to = w.to; t.dataset.step = w.step;
    tb.innerHTML = rows.map((s) => {
      const cells = QK.map((k) => '<td class="' + (k === '0.99' ? 'p99' : '') + '" data-q="' + k + '" data-v="' + (q(s, k) ?? '') + '">' + fmtMs(q(s, k)) + '</td>').join('');
      return '<tr data-request="' + esc(s.request) + '" data-count="' + s.count + '"' + (state.requests.has(s.request) ? ' class="sel"' : '') + '>' +
        '<td class="l req" title="' + esc(s.request) + '">' + esc(s.request) + '</td>' +
        '<td class="count">' + fmtInt(s.count) + '</td><td>' + fmtRate(s.count / secs) + '</td>' + cells +
        '<td data-v="' + (s.max ?? '') + '">' + fmtMs(s.max) + '</td>' +
        '<td class="l"><canvas class="spark" height="26"></canvas></td></tr>';
    }).join('');
    tb.querySelectorAll('tr').forEach((tr, i) => {
      const canvas = tr.querySelector('canvas');
      canvas.style.width = '160px';
      sparkline(canvas, grid(rows[i].points, (p) => q(p, '0.99'), w), '#f0883e');
      tr.addEventListener('click', () => {
        const r = tr.dataset.request;
        if (state.requests.size === 1 && state.requests.has(r)) state.requests.clear();
        else state.requests = new Set([r]);
        changed();
      });
    });
    $('table-note').textContent = rows.length ? rows.length + ' requests of ' + state.app + ', ' + fmtTime(w.from, false, true) + ' → ' + fmtTime(w.to, false, true) + '.' : 'No requests of this app in the window.';
  }

  async function renderTop(gen) {
    const w = view.win;
    const r = await api('/api/v1/top?' + qs({ by: '0.99', n: 10, from: w.from, to: w.to }));
    if (gen !== view.gen) return;
    const p = $('p-top');
    if (!r.ok || !r.json) {
      p.hidden = r.status === 404;
      if (!p.hidden) $('top-note').textContent = 'Unavailable: ' + why(r);
      return;
    }
    p.hidden = false;
    const list = r.json.series || r.json.top || [];
    $('toptable').querySelector('tbody').innerHTML = list.map((s) => {
      const v = s.value_ms ?? s.value ?? (s.quantiles && (s.quantiles['0.99'] ?? Object.values(s.quantiles)[0]));
      return '<tr><td class="l">' + esc(s.app) + '</td><td class="l req">' + esc(s.request) + '</td><td>' + fmtInt(s.count) + '</td><td class="p99">' + fmtMs(v) + '</td></tr>';
    }).join('');
    $('top-note').textContent = list.length ? '' : 'No samples in the window.';
  }

  async function renderCompleteness(gen) {
    const [c, st] = await Promise.all([api('/api/v1/completeness' + (state.app ? '?' + qs({ app: state.app }) : '')), api('/api/v1/status')]);
    if (gen !== view.gen) return;
    if (c.ok && c.json) {
      const a = (c.json.apps || []).find((x) => x.app === state.app);
      if (a) {
        const pct = a.completeness * 100;
        const v = $('comp-v');
        v.textContent = (pct >= 99.995 ? '100' : pct.toFixed(2)) + '%';
        v.className = 'v ' + (pct >= 99.9 ? 'good' : pct >= 99 ? 'warn' : 'bad');
        $('comp-s').textContent = fmtCount(a.delivered) + ' of ' + fmtCount(a.received) + ' samples stored';
        $('comp-s').title = a.delivered + ' samples stored of ' + a.received + ' received by the shims (their totals since they started)';
        const lv = $('loss-v');
        lv.textContent = fmtCount(a.dropped) + ' dropped';
        lv.className = 'v ' + (a.dropped > 0 ? 'bad' : 'good');
        $('loss-s').textContent = fmtCount(a.spooled) + ' spooled · ' + fmtCount(c.json.udp_kernel_drops) + ' UDP drops · ' + fmtCount(c.json.rejected_lines) + ' rejected';
        $('loss-s').title = a.spooled + ' samples spooled (on their way) · ' + c.json.udp_kernel_drops + ' UDP datagrams dropped by kernels (all apps) · ' + c.json.rejected_lines + ' rejected lines (all apps)';
      } else {
        $('comp-v').textContent = 'no report'; $('comp-v').className = 'v warn';
        $('comp-s').textContent = 'no shim has reported totals for ' + (state.app || 'this app') + ' yet';
        $('loss-v').textContent = '–'; $('loss-v').className = 'v';
        $('loss-s').textContent = fmtCount(c.json.udp_kernel_drops) + ' UDP drops · ' + fmtCount(c.json.rejected_lines) + ' rejected';
      }
    } else {
      $('comp-v').textContent = '?'; $('comp-s').textContent = why(c);
    }
    if (st.ok && st.json) {
      const bad = (st.json.corrupt_blocks || []).length;
      $('store-v').textContent = fmtCount(st.json.blocks) + ' blocks';
      $('store-v').className = 'v';
      $('store-s').textContent = bad ? bad + ' corrupt block file(s) set aside' : '0 corrupt · ' + fmtCount(st.json.duplicate_batches || 0) + ' duplicate batches';
      $('store-s').className = 's ' + (bad ? 'bad' : '');
    } else {
      $('store-v').textContent = '?'; $('store-s').textContent = why(st);
    }
  }

  function renderCards() {
    const w = view.win, sel = selectedSeries();
    $('win-v').textContent = state.range === 'custom' ? fmtSpan(w.to - w.from) : 'last ' + state.range;
    const sameDay = new Date(w.from).toDateString() === new Date(w.to - 1).toDateString();
    $('win-s').textContent = fmtTime(w.from, false, !sameDay) + ' → ' + fmtTime(w.to, false, !sameDay) + ' · step ' + fmtSpan(w.step);
    $('win-s').title = new Date(w.from).toString() + ' → ' + new Date(w.to).toString();
    const count = sel.reduce((a, s) => a + (s.count || 0), 0);
    const recv = sel.reduce((a, s) => a + (s.received || 0), 0);
    $('samples-v').textContent = fmtInt(count);
    $('samples-s').textContent = fmtInt(recv) + ' lines received · ' + sel.length + ' request' + (sel.length === 1 ? '' : 's');
  }

  // ---------- controls ----------
  function renderControls() {
    const appSel = $('app');
    const apps = [...view.apps.keys()].sort();
    if (state.app && !view.apps.has(state.app)) apps.unshift(state.app);
    appSel.innerHTML = apps.map((a) => '<option value="' + esc(a) + '">' + esc(a) + (view.apps.has(a) ? '' : ' (no data in window)') + '</option>').join('');
    if (state.app) appSel.value = state.app;
    const reqs = view.series.map((s) => s.request).sort();
    for (const r of state.requests) if (!reqs.includes(r)) reqs.push(r);
    $('reqlist').innerHTML = reqs.map((r) => '<label><input type="checkbox" value="' + esc(r) + '"' + (state.requests.has(r) ? ' checked' : '') + '> ' + esc(r) + '</label>').join('') ||
      '<div class="note">no requests in the window</div>';
    const n = state.requests.size;
    $('reqsummary').textContent = n === 0 ? 'All requests (' + reqs.length + ')' : n === 1 ? [...state.requests][0] : n + ' of ' + reqs.length + ' requests';
    document.querySelectorAll('#ranges button').forEach((b) => b.classList.toggle('on', b.dataset.range === state.range));
    const w = view.win;
    if (w && document.activeElement !== $('from') && document.activeElement !== $('to')) {
      $('from').value = toLocalInput(w.from); $('to').value = toLocalInput(w.to);
    }
    $('log').checked = state.log;
    $('qsel').value = state.q;
    $('live').classList.toggle('on', state.live);
  }
  function setStatus(text, err) { const s = $('status'); s.textContent = text; s.classList.toggle('err', !!err); }

  // ---------- refresh ----------
  async function refresh() {
    const gen = ++view.gen;
    view.lastRefresh = Date.now();
    const w = computeWindow();
    setStatus('loading…');
    const ser = await api('/api/v1/series?' + qs({ from: w.from, to: w.to }));
    if (gen !== view.gen) return;
    if (!ser.ok || !ser.json) { setStatus('series: ' + why(ser), true); return; }
    view.apps = new Map();
    for (const s of ser.json.series || []) view.apps.set(s.app, (view.apps.get(s.app) || 0) + s.count);
    if (!state.app) state.app = [...view.apps.entries()].sort((a, b) => b[1] - a[1]).map((e) => e[0])[0] || null;
    view.win = w;
    if (!state.app) {
      view.series = [];
      renderControls(); renderCards(); renderLatency(); renderThroughput(); renderTable();
      panelState('p-heatmap', true, 'No data yet: send samples to the shim (StatsD UDP) and they appear here.');
      setStatus('no data in this window', true);
      return;
    }
    const qu = await api('/api/v1/quantiles?' + qs({ app: state.app, from: w.from, to: w.to, q: QK.join(','), step: w.step }));
    if (gen !== view.gen) return;
    if (!qu.ok || !qu.json) { setStatus('quantiles: ' + why(qu), true); return; }
    view.series = qu.json.series || [];
    document.body.dataset.window = w.from + '-' + w.to;
    renderControls(); renderCards(); renderLatency(); renderThroughput(); renderTable();
    saveHash();
    await Promise.all([renderHeatmap(gen), renderCompleteness(gen), renderTop(gen)]);
    if (gen !== view.gen) return;
    setStatus((state.live ? liveText() + ' · ' : '') + 'updated ' + fmtTime(Date.now(), true, false));
    document.body.dataset.ready = String(gen);
  }
  function changed() { saveHash(); refresh(); if (state.live) startLive(); }

  // ---------- live mode: the tail stream triggers refreshes of a sliding window ----------
  function liveText() {
    if (live.mode === 'stream') {
      const secs = Math.max(1, (Date.now() - live.since) / 1000);
      return 'live stream · ' + fmtRate(live.events / secs) + ' events/s';
    }
    return live.mode === 'poll' ? 'live (stream unavailable, polling every 5 s)' : 'live';
  }
  function stopLive() {
    if (live.es) { live.es.close(); live.es = null; }
    if (live.timer) { clearInterval(live.timer); live.timer = null; }
    if (live.pending) { clearTimeout(live.pending); live.pending = null; }
    live.mode = '';
  }
  function onLiveEvent() {
    live.events++;
    if (live.pending) return;
    const wait = Math.max(0, 2000 - (Date.now() - view.lastRefresh));
    live.pending = setTimeout(() => { live.pending = null; refresh(); }, wait);
  }
  async function startLive() {
    stopLive();
    if (!state.live) return;
    if (state.range === 'custom') state.range = '15m';
    const sel = selectedSeries();
    const url = '/api/v1/live?' + qs({ app: state.app, request: sel.length === 1 && state.requests.size === 1 ? sel[0].request : null, summary: 1 });
    live.events = 0; live.since = Date.now(); live.mode = 'connecting';
    // One EventSource: it opens (200, text/event-stream) or fails at once (404, 503 when the
    // service has no live stream configured, …); then the page polls instead.
    const es = new EventSource(url);
    live.es = es;
    const fallback = () => {
      es.close();
      if (live.es !== es) return;
      live.es = null; live.mode = 'poll';
      live.timer = setInterval(refresh, 5000);
      refresh();
    };
    const giveUp = setTimeout(() => { if (live.es === es && live.mode === 'connecting') fallback(); }, 3000);
    es.onopen = () => {
      clearTimeout(giveUp);
      if (live.es !== es || live.mode === 'stream') return;
      live.mode = 'stream'; live.since = Date.now();
      live.timer = setInterval(() => { if (Date.now() - view.lastRefresh > 9000) refresh(); }, 10000);
      refresh();
    };
    es.onmessage = onLiveEvent;
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) { clearTimeout(giveUp); fallback(); } };
  }

  // ---------- wiring ----------
  function init() {
    loadHash();
    $('ranges').innerHTML = RANGES.map((r) => '<button type="button" data-range="' + r[0] + '">' + r[0] + '</button>').join('');
    $('ranges').addEventListener('click', (e) => {
      const b = e.target.closest('button'); if (!b) return;
      state.range = b.dataset.range; changed();
    });
    $('app').addEventListener('change', (e) => { state.app = e.target.value; state.requests.clear(); changed(); });
    $('reqlist').addEventListener('change', (e) => {
      if (e.target.type !== 'checkbox') return;
      if (e.target.checked) state.requests.add(e.target.value); else state.requests.delete(e.target.value);
      changed();
    });
    $('reqall').addEventListener('click', () => { state.requests.clear(); changed(); });
    $('reqnone').addEventListener('click', () => { state.requests.clear(); $('reqbox').open = false; changed(); });
    $('apply').addEventListener('click', () => {
      const f = new Date($('from').value).getTime(), t = new Date($('to').value).getTime();
      if (!(f < t)) { setStatus('custom range: "from" must be before "to"', true); return; }
      state.range = 'custom'; state.from = f; state.to = t; state.live = false; stopLive(); changed();
    });
    $('log').addEventListener('change', (e) => { state.log = e.target.checked; saveHash(); redraw(); });
    $('qsel').addEventListener('change', (e) => { state.q = e.target.value; saveHash(); redraw(); });
    $('live').addEventListener('click', () => { state.live = !state.live; renderControls(); saveHash(); if (state.live) startLive(); else { stopLive(); refresh(); } });
    document.addEventListener('click', (e) => { const box = $('reqbox'); if (box.open && !box.contains(e.target)) box.open = false; });
    attachHover($('lat')); attachHover($('thr'));
    let resizeTimer = null;
    window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(redraw, 150); });
    window.addEventListener('hashchange', () => { const before = location.hash; loadHash(); if (location.hash === before) refresh(); });
    if (state.live) startLive(); else refresh();
  }
  function redraw() {
    if (!view.win) return;
    renderControls(); renderLatency(); renderThroughput(); renderTable();
    renderHeatmap(view.gen);
  }
  // Exposed for tests and the curious: the current window and the series behind the page.
  window.lapstat = { state, view, refresh };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
"""#
}
