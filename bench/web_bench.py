#!/usr/bin/env python
"""The Loss Weight Tuner's targets, measured end to end against ``pinncore serve``:

1. ``click``: a 2000-step Adam fit of the seed problem (λ_ic = 100) from the click on Train to
   the verdict on the page (the page's own performance.now() stamps), in headless chromium;
   beside it, the same fit by ``pc.train`` in this process (the floor) and the fit's time on
   the server. Target: < 0.5 s.
2. ``sweep``: a 17-point λ_ic sweep (10^-3 … 10^5, Adam, 2000 steps) from the click on Sweep
   to the last point on the page; beside it, the same 17 fits one after another in this
   process. Target: < 8 s on this 2-core machine.
3. ``soak``: 20 clients for a minute, each in a loop: start a fit (on 429 wait the
   Retry-After), stream it to its end, fetch the solution. Reports errors (anything but 2xx
   and 429, a stream without an end, an exception), the fits, the 429s, the fits' times on
   the server, and the resident memory of the server and its workers over the minute.
   Targets: no error, flat memory, fits < 1 s each.

    python bench/web_bench.py [click] [sweep] [soak] [--repeat 5] [--seconds 60] [--clients 20]
                              [--warmup 0] [--max-fits 4] [--screenshot docs/tuner.png]

The server is ``pinncore serve --port 0`` in a subprocess (so its memory can be read from
/proc); the browser is Debian's chromium through selenium (click and sweep only).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import httpx

SEED_FIT = {"problem": "harmonic", "weights": {"ic": 100.0}, "steps": 2000, "optimizer": "adam"}


class Server:
    """``pinncore serve --port 0`` in a subprocess; ``url`` once it listens."""

    def __init__(self, max_fits):
        self.proc = subprocess.Popen([sys.executable, "-m", "pinncore", "serve", "--port", "0", "--max-fits",
                                      str(max_fits)], stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd="/")
        line = self.proc.stdout.readline()
        self.url = line.split(" at ")[1].split()[0]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "api/status", timeout=2).json()["workers_ready"] == max_fits:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def rss_mb(self):
        """Resident memory (MB) of the server process and all its children."""
        pids = [self.proc.pid]
        try:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
            pids += [int(p) for p in out.stdout.split()]
        except OSError:
            pass
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            except (OSError, StopIteration):
                pass
        return total / 1024

    def stop(self):
        self.proc.send_signal(2)
        self.proc.wait(20)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1440,1000", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))


def open_page(driver, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    driver.execute_script("const s = document.getElementById('lam-ic'); s.value = 2; s.dispatchEvent(new Event('input'));")


def in_process(weights, steps=2000, seed=0):
    import pinncore as pc

    t = time.perf_counter()
    r = pc.train(pc.problems.harmonic(), pc.MLP([1, 50, 50, 50, 1], seed=seed), weighting=pc.Fixed(weights),
                 steps=steps, warn=False)
    return time.perf_counter() - t, r.rel_l2


def bench_click(url, repeat):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser()
    try:
        open_page(d, url)
        clicks, server, cpu, floor = [], [], [], []
        for _ in range(repeat):
            floor.append(in_process({"ic": 100.0})[0])
            d.find_element(By.ID, "train").click()
            WebDriverWait(d, 60).until(lambda d: d.find_element(By.ID, "verdict").get_attribute("data-state") == "done")
            v = d.find_element(By.ID, "verdict")
            assert v.get_attribute("data-verdict") == "clean", v.get_attribute("data-verdict")
            clicks.append(float(v.get_attribute("data-click-ms")) / 1000)
            text = d.find_element(By.ID, "timing").text
            server.append(float(text.split("fit ")[1].split(" s")[0]))
            cpu.append(float(text.split("(")[1].split(" s CPU")[0]))
            time.sleep(0.3)
    finally:
        d.quit()
    med = statistics.median
    print(f"click → verdict, 2000-step Adam fit of the seed problem ({repeat} clicks):")
    print(f"  page  median {med(clicks):.3f} s  [min {min(clicks):.3f}, max {max(clicks):.3f}]  target < 0.5 s")
    print(f"  fit on the server  median {med(server):.3f} s ({med(cpu):.3f} s CPU);  "
          f"pc.train in this process  median {med(floor):.3f} s")
    print(f"  overhead of the page + API over the server's fit: {med(clicks) - med(server):.3f} s;  "
          f"CPU of the fit + that overhead: {med(cpu) + med(clicks) - med(server):.3f} s")
    return {"click": clicks, "server": server, "cpu": cpu, "in_process": floor}


def _page_sweep(d, second):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    Select(d.find_element(By.ID, "sweep-second")).select_by_value(second)
    d.find_element(By.ID, "sweep").click()
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.ID, "chart-sweep").get_attribute("data-done") == "false")
    WebDriverWait(d, 600).until(lambda d: d.find_element(By.ID, "chart-sweep").get_attribute("data-done") == "true")
    c = d.find_element(By.ID, "chart-sweep")
    print("  page: " + d.find_element(By.ID, "goldilocks").text)
    return float(c.get_attribute("data-seconds")), int(c.get_attribute("data-points")), float(c.get_attribute("data-cpu"))


def bench_sweep(url, screenshot):
    """The 17-point sweep with Adam alone (the target), then with LM side by side (if installed)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from pinncore.web.spec import lm_available

    d = browser()
    try:
        open_page(d, url)
        d.find_element(By.ID, "train").click()
        WebDriverWait(d, 60).until(lambda d: d.find_element(By.ID, "verdict").get_attribute("data-state") == "done")
        page, points, cpu = _page_sweep(d, "none")
        both = _page_sweep(d, "lm") if lm_available() else None
        time.sleep(0.5)
        if screenshot:
            d.set_window_size(1440, 1120)    # the whole page, sweep summary included
            time.sleep(0.5)
            d.save_screenshot(screenshot)
            print(f"  screenshot: {screenshot}")
    finally:
        d.quit()
    t = time.perf_counter()
    for k in range(17):
        in_process({"ic": 10.0 ** (-3 + 0.5 * k)})
    serial = time.perf_counter() - t
    print(f"17-point λ_ic sweep on the page (Adam, 2000 steps): {page:.2f} s ({points} points drawn)  target < 8 s;  "
          f"the 17 fits one after another in this process: {serial:.2f} s (x{serial / page:.2f})")
    print(f"  CPU time of the 17 fits: {cpu:.2f} s in all, {cpu / 2:.2f} s per core on 2 workers")
    if both:
        print(f"  with Levenberg–Marquardt (200 iterations from scratch) side by side: {both[0]:.2f} s for "
              f"{both[1]} fits, {both[2]:.2f} s CPU in all")
    return {"page": page, "points": points, "serial": serial, "cpu": cpu, "with_lm": both}


class Client(threading.Thread):
    def __init__(self, url, until, stats):
        super().__init__(daemon=True)
        self.url, self.until, self.stats = url, until, stats

    def run(self):
        with httpx.Client(base_url=self.url, timeout=60) as c:
            while time.monotonic() < self.until:
                try:
                    self.one(c)
                except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                    self.stats["errors"].append(f"{type(e).__name__}: {e}")

    def one(self, c):
        t0 = time.monotonic()
        r = c.post("api/fits", json=SEED_FIT)
        if r.status_code == 429:
            self.stats["busy"] += 1
            time.sleep(float(r.headers.get("retry-after", "1")))
            return
        if r.status_code != 202:
            self.stats["errors"].append(f"POST {r.status_code}: {r.text[:100]}")
            return
        links = r.json()
        end = None
        with c.stream("GET", links["events"]) as s:
            event = None
            for line in s.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "end":
                    end = json.loads(line[5:])
        if end is None or end["status"] != "completed":
            self.stats["errors"].append(f"stream ended without a completed fit: {end}")
            return
        sol = c.get(links["solution"])
        if sol.status_code != 200:
            self.stats["errors"].append(f"solution {sol.status_code}")
            return
        self.stats["fits"].append(end["wall_time"])
        self.stats["cpu"].append(end["cpu_time"])
        self.stats["latency"].append(time.monotonic() - t0)


def bench_soak(server, seconds, clients, warmup):
    stats = {"errors": [], "busy": 0, "fits": [], "latency": [], "cpu": []}
    until = time.monotonic() + warmup + seconds
    threads = [Client(server.url, until, stats) for _ in range(clients)]
    mem = [(0.0, server.rss_mb())]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(5)
        mem.append((time.monotonic() - t0, server.rss_mb()))
    start = next(m for t, m in mem if t >= warmup) if warmup else mem[0][1]
    grew = mem[-1][1] - start
    fits = sorted(stats["fits"])
    q = lambda p: fits[min(len(fits) - 1, int(p * len(fits)))] if fits else float("nan")  # noqa: E731
    print(f"{clients} clients for {warmup:g} s of warm-up + {seconds:g} s: {len(fits)} fits, {stats['busy']} answers 429 (retried), "
          f"{len(stats['errors'])} errors")
    print(f"  fit on the server: median {q(0.5):.3f} s, p90 {q(0.9):.3f} s, max {fits[-1] if fits else float('nan'):.3f} s"
          f"  target < 1 s;  CPU per fit median {statistics.median(stats['cpu'] or [float('nan')]):.3f} s;  "
          f"client start → solution median {statistics.median(stats['latency'] or [float('nan')]):.3f} s")
    print("  memory of the server + workers (MB) over time: " + ", ".join(f"{t:.0f}s {m:.0f}" for t, m in mem))
    print(f"  memory change over the {seconds:g} s after the warm-up: {grew:+.1f} MB")
    for e in stats["errors"][:5]:
        print("  error:", e)
    return {"stats": {k: v if not isinstance(v, list) else len(v) for k, v in stats.items()}, "memory": mem,
            "growth_mb": grew,
            "fit_median": q(0.5), "fit_max": fits[-1] if fits else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", nargs="*", default=["click", "sweep", "soak"], choices=["click", "sweep", "soak"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--warmup", type=float, default=0, help="seconds of soak before the measured ones")
    ap.add_argument("--max-fits", type=int, default=4)
    ap.add_argument("--screenshot", default=None)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    server = Server(args.max_fits)
    try:
        if "click" in args.which:
            bench_click(server.url, args.repeat)
        if "sweep" in args.which:
            bench_sweep(server.url, args.screenshot)
        if "soak" in args.which:
            bench_soak(server, args.seconds, args.clients, args.warmup)
    finally:
        server.stop()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
