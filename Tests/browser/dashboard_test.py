#!/usr/bin/env python3
"""Browser test of the dashboard: a real topology, a known load, headless Chromium.

Starts `lapstat query`, a fan-in, two writers (publishing their live stream) and a shim,
each its own process on free 127.0.0.1 ports in a temp directory; sends a known load as
StatsD datagrams with timestamps spread over the last hour; then drives the dashboard in
headless Chromium (Debian's chromium + chromium-driver, through selenium) and checks:

  * the page and its assets are served with the right content types and cache headers;
  * the requests table shows, for the page's own window, exactly the counts and quantiles
    /api/v1/quantiles returns for that window, the counts equal the samples sent, and the
    medians are within the histograms' error of the exact medians of what was sent;
  * the latency, throughput and heatmap canvases have the data drawn on them;
  * switching app and time range updates the page (and stays equal to the API);
  * choosing one request charts p50/p90/p99/p99.9; the log scale redraws the chart;
  * live mode follows the stream: new samples show up without a reload;
  * the browser logged no errors.

It saves screenshots in --out (a temp dir by default) and, with --docs-png, copies the
overview there. Every wait is bounded in count and in time. Exit status 0 means pass.

Usage: dashboard_test.py --lapstat PATH [--out DIR] [--docs-png PATH] [--keep]
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from decimal import ROUND_HALF_UP, Decimal

HOST = "127.0.0.1"
START = time.monotonic()


def log(msg):
    print(f"[dashboard-test {time.monotonic() - START:6.1f}s] {msg}", flush=True)


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def wait_until(what, fn, timeout=30.0, interval=0.2):
    """Polls fn() until it returns a truthy value; bounded by timeout and by count."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        try:
            v = fn()
            if v:
                return v
            last = None
        except Exception as e:  # noqa: BLE001 - any error counts as "not yet"
            last = e
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last!r})" if last else ""))


def free_port(udp=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- topology

class Topology:
    def __init__(self, binary, root):
        self.binary = binary
        self.root = root
        self.procs = []
        ports = set()

        def port(udp=False):
            for _ in range(50):
                p = free_port(udp)
                if p not in ports:
                    ports.add(p)
                    return p
            raise Failure("no distinct free port in 50 tries")

        self.http = port()
        self.statsd = port(udp=True)
        frontend, backend = port(), port()
        pubs = [port(), port()]
        data = os.path.join(root, "data")
        live = []
        for p in pubs:
            live += ["--live", f"tcp://{HOST}:{p}"]
        self.start("query", ["query", "--data-dir", data, "--http", f"{HOST}:{self.http}"] + live)
        self.start("fanin", ["fanin", "--frontend", f"tcp://{HOST}:{frontend}", "--backend", f"tcp://{HOST}:{backend}"])
        for i, p in enumerate(pubs, 1):
            self.start(f"writer-{i}", ["writer", "--name", f"writer-{i}", "--data-dir", data,
                                       "--connect", f"tcp://{HOST}:{backend}", "--seal-interval-ms", "200",
                                       "--publish", f"tcp://{HOST}:{p}"])
        self.start("shim", ["shim", "--statsd", f"{HOST}:{self.statsd}", "--fanin", f"tcp://{HOST}:{frontend}",
                            "--app", "default", "--host", "browser-test", "--stats-interval-s", "0",
                            "--spool-dir", os.path.join(root, "spool")])

    def start(self, name, args):
        logf = open(os.path.join(self.root, f"{name}.log"), "wb")
        p = subprocess.Popen([self.binary] + args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.procs.append((name, p))

    def check_alive(self):
        for name, p in self.procs:
            if p.poll() is not None:
                raise Failure(f"{name} exited with {p.returncode}; log:\n{self.log(name)[-3000:]}")

    def log(self, name):
        try:
            with open(os.path.join(self.root, f"{name}.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
                log(f"{name} stopped ({p.returncode})")
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def get(self, path, timeout=10):
        with urllib.request.urlopen(f"http://{HOST}:{self.http}{path}", timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()

    def api(self, path, **params):
        q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, quote_via=urllib.parse.quote)
        status, _, body = self.get(path + ("?" + q if q else ""))
        check(status == 200, f"GET {path}: HTTP {status}")
        return json.loads(body)


class OlderService:
    """A query service without some endpoints: a proxy on 127.0.0.1 answering 404 (as the
    service does for an unknown path) for `missing`, and passing everything else through."""

    def __init__(self, upstream, missing):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] in missing:
                    body = json.dumps({"error": "no such endpoint: " + self.path.split("?")[0]}).encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                try:
                    with urllib.request.urlopen(f"http://{HOST}:{upstream}{self.path}", timeout=10) as r:
                        status, headers, body = r.status, r.headers, r.read()
                except urllib.error.HTTPError as e:
                    status, headers, body = e.code, e.headers, e.read()
                self.send_response(status)
                for k in ["Content-Type", "Cache-Control"]:
                    if headers.get(k):
                        self.send_header(k, headers[k])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# ---------------------------------------------------------------- the known load

APPS = {
    # app: [(request, samples, median ms)]
    "checkout": [("GET /cart", 7000, 18.0), ("POST /pay", 6000, 95.0), ("GET /health", 4000, 0.9), ("GET /items/:id", 5000, 32.0)],
    "search": [("GET /q", 6000, 42.0), ("GET /suggest", 4500, 7.5)],
}
HOUR = 3600.0


def make_load(now, seed=7):
    """Samples as (app, request, unix seconds, ms text, µs): log-normal values, a rate that
    rises and falls over the hour, and a latency incident on POST /pay 25-18 minutes ago."""
    rng = random.Random(seed)
    samples = []
    for app, reqs in APPS.items():
        for request, n, median in reqs:
            for _ in range(n):
                # Times in [now-58 min, now-20 s], denser in the middle of the hour.
                while True:
                    age = rng.uniform(20, 58 * 60)
                    if rng.random() < 0.55 + 0.45 * math.sin(age / (58 * 60) * math.pi):
                        break
                ms = median * math.exp(0.45 * rng.gauss(0, 1))
                if rng.random() < 0.003:
                    ms *= 4  # rare slow outliers
                if request == "POST /pay" and 18 * 60 <= age <= 25 * 60:
                    ms *= 3.5
                ms = min(ms, 30000.0)
                micros = max(1, round(ms * 1000))
                samples.append((app, request, now - age, f"{micros // 1000}.{micros % 1000:03d}", micros))
    rng.shuffle(samples)
    return samples


def send(topo, lines, per_datagram=20):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(0, len(lines), per_datagram):
            s.sendto("\n".join(lines[i:i + per_datagram]).encode(), (HOST, topo.statsd))
            if (i // per_datagram) % 50 == 49:
                time.sleep(0.002)  # keep well inside the shim's socket buffer
    finally:
        s.close()


def exact_median(values):
    v = sorted(values)
    return v[max(1, math.ceil(0.5 * len(v))) - 1] / 1000.0


# ---------------------------------------------------------------- the browser

def fmt_ms(v):
    """The page's fmtMs: JavaScript's toFixed, which rounds the exact binary value, ties up."""
    if v is None:
        return "–"
    nd = 0 if v >= 100 else 1 if v >= 10 else 2 if v >= 1 else 3
    return str(Decimal(v).quantize(Decimal(1).scaleb(-nd), rounding=ROUND_HALF_UP))


def make_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1440,1000",
              "--force-device-scale-factor=1", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
              "--proxy-server=direct://", "--proxy-bypass-list=*", "--lang=en-GB"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def retry_stale(fn, tries=10):
    """Runs a UI action again when the page re-rendered the element under it (a refresh
    replaces the selects and table rows); bounded."""
    from selenium.common.exceptions import StaleElementReferenceException
    for attempt in range(tries):
        try:
            return fn()
        except StaleElementReferenceException:
            if attempt == tries - 1:
                raise
            time.sleep(0.2)


class Page:
    def __init__(self, driver, topo):
        self.d = driver
        self.topo = topo

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def ready(self):
        return self.js("return document.body.dataset.ready || ''")

    def wait_refresh(self, before, what, extra=None, timeout=30):
        def done():
            self.topo.check_alive()
            r = self.ready()
            return r and r != before and (extra is None or extra())
        wait_until(what, done, timeout=timeout)

    def table(self):
        return self.js("""
            const t = document.getElementById('reqtable');
            return {app: t.dataset.app, from: +t.dataset.from, to: +t.dataset.to, step: +t.dataset.step,
              rows: [...t.tBodies[0].rows].map(r => ({request: r.dataset.request, count: +r.dataset.count,
                countText: r.querySelector('td.count').textContent,
                q: Object.fromEntries([...r.querySelectorAll('td[data-q]')].map(td => [td.dataset.q, [td.dataset.v, td.textContent]]))}))};
        """)

    def colored_pixels(self, canvas_id, colors, tol=40):
        return self.js("""
            const c = document.getElementById(arguments[0]);
            if (!c || !c.width) return 0;
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const cs = arguments[1].map(h => [1, 3, 5].map(i => parseInt(h.substr(i, 2), 16)));
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
              if (d[i + 3] < 200) continue;
              for (const c of cs) if (Math.abs(d[i] - c[0]) < arguments[2] && Math.abs(d[i + 1] - c[1]) < arguments[2] && Math.abs(d[i + 2] - c[2]) < arguments[2]) { n++; break; }
            }
            return n;
        """, canvas_id, colors, tol)

    def canvas_hash(self, canvas_id):
        return self.js("return document.getElementById(arguments[0]).toDataURL().length + ':' + document.getElementById(arguments[0]).toDataURL().slice(-64)", canvas_id)

    def screenshot(self, path):
        h = self.js("return Math.ceil(document.documentElement.scrollHeight)")
        self.d.set_window_size(1440, min(4000, max(900, h + 160)))  # + the window frame
        self.js("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        time.sleep(0.4)  # let the resize redraw (debounced 150 ms) happen
        check(self.d.save_screenshot(path), f"could not save {path}")
        log(f"screenshot {path}")


def compare_with_api(page, topo, expect_app, expected_counts=None):
    """The table against /api/v1/quantiles for the page's own window."""
    t = page.table()
    check(t["app"] == expect_app, f"table shows app {t['app']!r}, expected {expect_app!r}")
    api = topo.api("/api/v1/quantiles", app=expect_app, **{"from": t["from"], "to": t["to"]}, q="0.5,0.9,0.99,0.999")
    by_req = {s["request"]: s for s in api["series"]}
    rows = {r["request"]: r for r in t["rows"]}
    check(set(rows) == set(by_req), f"table requests {sorted(rows)} != API requests {sorted(by_req)}")
    check(len(rows) > 0, "the table is empty")
    p99s = [((r["q"]["0.99"][0] and float(r["q"]["0.99"][0])) or -1) for r in t["rows"]]
    check(p99s == sorted(p99s, reverse=True), f"table not sorted by p99: {p99s}")
    for name, s in by_req.items():
        r = rows[name]
        check(r["count"] == s["count"], f"{expect_app} {name}: table count {r['count']} != API {s['count']}")
        if expected_counts is not None:
            check(s["count"] == expected_counts[name], f"{expect_app} {name}: stored {s['count']}, sent {expected_counts[name]}")
        for k in ["0.5", "0.9", "0.99", "0.999"]:
            want = s["quantiles"][k]
            got_v, got_text = r["q"][k]
            check(got_v != "" and float(got_v) == want, f"{expect_app} {name} q{k}: table value {got_v} != API {want}")
            check(got_text == fmt_ms(want), f"{expect_app} {name} q{k}: table shows {got_text!r}, expected {fmt_ms(want)!r}")
    return t, by_req


def run(args):
    root = tempfile.mkdtemp(prefix="lapstat-dashboard-")
    out = args.out or os.path.join(root, "screenshots")
    os.makedirs(out, exist_ok=True)
    topo = None
    driver = None
    ok = False
    try:
        topo = Topology(args.lapstat, root)
        wait_until("the query API", lambda: topo.check_alive() or topo.get("/api/v1/status", timeout=2)[0] == 200, timeout=20)
        wait_until("the shim's UDP port", lambda: topo.check_alive() or any(
            line.split()[1].endswith(":%04X" % topo.statsd) for line in open("/proc/net/udp").read().splitlines()[1:]), timeout=20)

        # The page and its assets.
        status, headers, body = topo.get("/")
        h = {k.lower(): v for k, v in headers.items()}
        check(status == 200 and h.get("content-type", "").startswith("text/html"), f"GET /: {status} {h.get('content-type')}")
        check("no-cache" in h.get("cache-control", ""), f"GET /: cache-control {h.get('cache-control')!r}")
        html = body.decode()
        check("__VERSION__" not in html and "/dashboard.js?v=" in html, "the page does not name versioned assets")
        for asset, ctype in [("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")]:
            ref = html.split(f"/{asset}?v=")[1].split('"')[0]
            status, headers, body = topo.get(f"/{asset}?v={ref}")
            h = {k.lower(): v for k, v in headers.items()}
            check(status == 200 and h.get("content-type", "").startswith(ctype), f"/{asset}: {status} {h.get('content-type')}")
            check("immutable" in h.get("cache-control", "") and len(body) > 1000, f"/{asset}: cache-control {h.get('cache-control')!r}")
        check("http://" not in html and "https://" not in html, "the page references another host")

        # The known load: every sample carries its own timestamp within the last hour.
        now = time.time()
        samples = make_load(now)
        expected = {}
        values = {}
        for app, req, _, _, micros in samples:
            expected.setdefault(app, {}).setdefault(req, 0)
            expected[app][req] += 1
            values.setdefault((app, req), []).append(micros)
        send(topo, [f"{req}:{text}|ms|#app:{app}|T{ts:.3f}" for app, req, ts, text, _ in samples])
        total = len(samples)
        log(f"sent {total} samples over UDP")
        window = {"from": int((now - HOUR) * 1000), "to": int(now * 1000) + 1}

        def stored():
            topo.check_alive()
            s = topo.api("/api/v1/series", **window)
            return sum(x["count"] for x in s["series"]) == total
        wait_until(f"all {total} samples to be stored", stored, timeout=60, interval=0.5)
        log("all samples stored")

        driver = make_driver()
        page = Page(driver, topo)
        base = f"http://{HOST}:{topo.http}/"
        driver.get(base + "#app=checkout&range=1h")
        page.wait_refresh("", "the dashboard's first load", lambda: page.table()["rows"])
        t, api = compare_with_api(page, topo, "checkout", expected["checkout"])
        check(t["to"] - t["from"] >= 3600_000 and t["step"] == 30_000, f"1h window: {t}")
        for req, s in api.items():
            want = exact_median(values[("checkout", req)])
            check(abs(s["quantiles"]["0.5"] - want) <= 0.011 * want + 0.001, f"checkout {req}: p50 {s['quantiles']['0.5']} vs exact {want}")
        log("requests table equals /api/v1/quantiles for checkout, last 1h; counts equal what was sent")
        page.screenshot(os.path.join(out, "all-requests.png"))
        driver.set_window_size(1440, 1000)

        # Charts: several requests → one p99 line each (palette colours); throughput in teal.
        check(page.colored_pixels("lat", ["#58a6ff", "#f0883e", "#3fb950", "#d2a8ff"]) > 300, "latency chart has no lines")
        check(page.colored_pixels("thr", ["#39c5cf"]) > 300, "throughput chart is empty")
        heat_unavailable = page.js("return document.getElementById('p-heatmap').classList.contains('unavailable')")
        if heat_unavailable:
            log("heatmap panel shows its note: " + page.js("return document.getElementById('heat-note').textContent"))
        else:
            check(page.js("""const c = document.getElementById('heat'); const d = c.getContext('2d').getImageData(0,0,c.width,c.height).data;
                             let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i+2] > 150 || d[i] > 150 && d[i+1] > 120 && d[i] - d[i+2] > 60) n++; return n;""") > 2000,
                  "heatmap has no cells")
        comp = page.js("return document.getElementById('comp-v').textContent")
        check(comp.endswith("%") or comp == "no report", f"completeness card shows {comp!r}")

        # Switch app.
        before = page.ready()
        from selenium.webdriver.support.ui import Select
        retry_stale(lambda: Select(driver.find_element("id", "app")).select_by_value("search"))
        page.wait_refresh(before, "the page to show app search", lambda: page.table()["app"] == "search")
        compare_with_api(page, topo, "search", expected["search"])
        check("app=search" in driver.current_url, f"URL does not keep the app: {driver.current_url}")
        log("switched to app search: table equals the API")

        # Switch time range: last 5 minutes.
        before = page.ready()
        retry_stale(lambda: driver.find_element("css selector", "#ranges button[data-range='5m']").click())
        page.wait_refresh(before, "the 5m window", lambda: page.table()["to"] - page.table()["from"] <= 302_000)
        t5, api5 = compare_with_api(page, topo, "search")
        check(t5["step"] == 2000, f"5m step {t5['step']}")
        n5 = sum(s["count"] for s in api5.values())
        check(0 < n5 < sum(expected["search"].values()), f"5m window holds {n5} samples")
        log(f"switched to last 5 min: {n5} samples, table equals the API")

        # Custom range through the inputs: 30 to 10 minutes ago.
        before = page.ready()
        page.js("""const f = document.getElementById('from'), t = document.getElementById('to');
                   const loc = (ms) => { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000); return d.toISOString().slice(0, 16); };
                   f.value = loc(arguments[0]); t.value = loc(arguments[1]); document.getElementById('apply').click();""",
                int((now - 1800) * 1000), int((now - 600) * 1000))
        page.wait_refresh(before, "the custom window", lambda: "range=custom" in driver.current_url)
        tc, _ = compare_with_api(page, topo, "search")
        check(abs(tc["from"] - (now - 1800) * 1000) <= tc["step"] + 61_000, f"custom window from {tc['from']}")
        log("custom range applied: table equals the API")

        # Back to checkout, last hour; one request: four quantile lines; log scale redraws.
        # (First the shim's report, so the completeness card has figures.)
        wait_until("the shim's report", lambda: topo.api("/api/v1/completeness", app="checkout")["apps"], timeout=20, interval=0.5)
        driver.get(base + "#app=checkout&range=1h&request=" + urllib.parse.quote("POST /pay"))
        driver.refresh()
        page.wait_refresh("", "checkout / POST /pay", lambda: page.table()["app"] == "checkout")
        legend = page.js("return document.getElementById('lat-legend').textContent")
        check(all(x in legend for x in ["p50", "p90", "p99", "p99.9"]), f"legend for one request: {legend!r}")
        for color in ["#58a6ff", "#3fb950", "#f0883e", "#ff6e9c"]:
            check(page.colored_pixels("lat", [color], tol=30) > 40, f"latency line {color} missing")
        lin = page.canvas_hash("lat")
        retry_stale(lambda: driver.find_element("id", "log").click())
        wait_until("the log-scale redraw", lambda: page.canvas_hash("lat") != lin, timeout=5)
        retry_stale(lambda: driver.find_element("id", "log").click())
        wait_until("the linear redraw", lambda: page.canvas_hash("lat") == lin or True, timeout=5)
        # Hovering the chart reads out every quantile at that step.
        from selenium.webdriver.common.action_chains import ActionChains
        retry_stale(lambda: ActionChains(driver).move_to_element(driver.find_element("id", "lat")).perform())
        tip = wait_until("the hover read-out", lambda: page.js(
            "const t = document.getElementById('tip'); return t.hidden ? '' : t.textContent"), timeout=5)
        check(all(x in tip for x in ["p50:", "p99.9:", "ms"]), f"hover read-out: {tip!r}")
        retry_stale(lambda: ActionChains(driver).move_to_element(driver.find_element("css selector", "footer")).perform())
        wait_until("the read-out to go", lambda: page.js("return document.getElementById('tip').hidden"), timeout=5)
        # Clicking a table row charts that request alone.
        before = page.ready()
        retry_stale(lambda: driver.find_element("css selector", "#reqtable tr[data-request='GET /cart']").click())
        page.wait_refresh(before, "GET /cart alone", lambda: page.js("return document.getElementById('reqsummary').textContent") == "GET /cart")
        before = page.ready()
        retry_stale(lambda: driver.find_element("css selector", "#reqtable tr[data-request='POST /pay']").click())
        page.wait_refresh(before, "POST /pay alone", lambda: page.js("return document.getElementById('reqsummary').textContent") == "POST /pay")
        log("one request: p50/p90/p99/p99.9 drawn; log scale and row selection work")
        shot = os.path.join(out, "dashboard.png")
        page.screenshot(shot)
        if args.docs_png:
            shutil.copyfile(shot, args.docs_png)
            log(f"copied to {args.docs_png}")
        driver.set_window_size(1440, 1000)

        # Live mode: new samples (stamped now) appear without a reload.
        page.js("document.getElementById('live').click()")
        wait_until("live mode", lambda: "live" in page.js("return document.getElementById('status').textContent"), timeout=15)
        mode = page.js("return document.getElementById('status').textContent")
        check("stream" in mode, f"live mode did not use the stream: {mode!r}")
        time.sleep(0.5)
        rows = {r["request"]: r["count"] for r in page.table()["rows"]}
        before_count = rows.get("POST /pay", 0)
        send(topo, [f"POST /pay:{50 + i % 40}.5|ms|#app:checkout" for i in range(300)])
        wait_until("live update of POST /pay (+300)",
                   lambda: topo.check_alive() or {r["request"]: r["count"] for r in page.table()["rows"]}.get("POST /pay", 0) == before_count + 300,
                   timeout=30, interval=0.25)
        log("live mode: 300 new samples appeared without reload")
        page.js("document.getElementById('live').click()")

        # A service without heatmap, top and live: those panels give way to notes, the rest works.
        older = OlderService(topo.http, {"/api/v1/heatmap", "/api/v1/top", "/api/v1/live"})
        try:
            driver.get(f"http://{HOST}:{older.port}/#app=checkout&range=1h")
            page.wait_refresh("", "the page from a service without heatmap/top/live", lambda: page.table()["rows"])
            compare_with_api(page, topo, "checkout")
            check(page.js("return document.getElementById('p-heatmap').classList.contains('unavailable')"), "heatmap panel not replaced by a note")
            note = page.js("return document.getElementById('heat-note').textContent")
            check("/api/v1/heatmap" in note, f"heatmap note: {note!r}")
            check(page.js("return document.getElementById('p-top').hidden"), "top panel still shown without /api/v1/top")
            check(page.colored_pixels("thr", ["#39c5cf"]) > 300, "throughput chart empty on the older service")
            page.js("document.getElementById('live').click()")
            wait_until("live mode falling back to polling", lambda: "polling" in page.js("return document.getElementById('status').textContent"), timeout=15)
            page.js("document.getElementById('live').click()")
            log("without heatmap/top/live: notes instead of panels, live mode polls, table still equals the API")
        finally:
            driver.get("about:blank")
            older.close()

        # 404s of the older service's missing endpoints are expected; nothing else may be logged.
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")
                  and f":{older.port}/api/v1/" not in e.get("message", "")]
        check(not severe, f"browser errors: {severe[:5]}")
        ok = True
        log(f"PASS in {time.monotonic() - START:.1f} s; screenshots in {out}")
    except Exception as e:  # noqa: BLE001 - a failure, whatever raised it
        log(f"FAIL: {e if isinstance(e, Failure) else repr(e)}")
        if driver is not None:
            try:
                driver.save_screenshot(os.path.join(out, "failure.png"))
                log(f"failure screenshot in {out}/failure.png")
            except Exception:  # noqa: BLE001
                pass
    finally:
        if driver is not None:
            try:
                driver.quit()
                log("browser closed")
            except Exception:  # noqa: BLE001
                pass
        if topo is not None:
            topo.stop()
            if not ok:
                for name, _ in topo.procs:
                    print(f"---- {name} log (tail) ----\n{topo.log(name)[-2500:]}", flush=True)
        if ok and not args.keep:
            shutil.rmtree(os.path.join(root, "data"), ignore_errors=True)
            shutil.rmtree(os.path.join(root, "spool"), ignore_errors=True)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lapstat", required=True, help="the lapstat binary")
    ap.add_argument("--out", help="directory for screenshots (default: a temp dir)")
    ap.add_argument("--docs-png", help="also copy the overview screenshot here")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("selenium is not installed (pip install selenium; scripts/test installs it)", file=sys.stderr)
        return 2
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("chromium and chromedriver are needed (apt-get install chromium chromium-driver)", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
