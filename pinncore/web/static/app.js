/* Loss Weight Tuner — the page's script. Talks to the pinncore JSON API of this server only
 * (documented in pinncore/web/__init__.py); draws its charts on canvases itself. */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TERM_COLORS = { pde: "#2457c5", ic: "#c53030", bc: "#1f8a4c", data: "#7b3fb3" };
  const OPT_COLORS = ["#2457c5", "#dd6b20"];
  // Optimizer and scheme menus, labels and defaults come from the server's catalogue (the
  // registries): nothing here lists them.
  const optInfo = (k) => (state.cat && state.cat.optimizer_info[k]) || { label: k, first_label: "Iterations", default_steps: 2000, max_steps: 20000, second_steps: 0, two_phase: false };
  const optLabel = (k) => optInfo(k).label;
  const PRETTY = {
    harmonic: "Harmonic oscillator IVP: u″ + ω²u = 0 on t ∈ [0, 1], u(0) = 1, u′(0) = 0; exact u = cos(ωt), ω = 2π — the loss-balance seed problem",
    burgers: "Viscous Burgers: u_t + u u_x = (0.01/π) u_xx on (t, x) ∈ [0, 1] × [−1, 1], u(0, x) = −sin(πx); Cole–Hopf reference",
    heat1d: "Heat: u_t = 0.1 u_xx on [0, 1]², u(0, x) = sin(πx); exact u = e^(−0.1π²t) sin(πx)",
    wave1d: "Wave: u_tt = 4 u_xx on [0, 1]², two modes (Wang, Yu & Perdikaris 2022)",
    poisson1d: "Poisson: u_xx = f on [0, 1], u(0) = u(1) = 0; exact u = sin(4πx) (Wang, Yu & Perdikaris 2022)",
    helmholtz2d: "Helmholtz: Δu + u = q on [−1, 1]²; exact u = sin(πx) sin(4πy) (Wang, Teng & Perdikaris 2021)",
    poisson_lshape: "Poisson: −Δu = 1 on the L-shape [−1, 1]² ∖ (0, 1]², u = 0 on its boundary; finite-difference reference (Lu et al. 2021)",
    poisson_holes: "Poisson on a square with four circular holes: exact u = sin(πx) sin(πy) (PINNacle-style geometry, Hao et al. 2023)",
  };
  let CLEAN = 0.05, WRONG = 0.30;   // replaced by the catalogue's (pinncore.verdict) at start
  const SWEEP_CAPTION = "λ sweep: rel-L2 against λ (press Sweep)";
  const CRISIS = 100;
  const LAM_LO = -3, LAM_HI = 5;

  // ------------------------------------------------------------------ formatting

  function sci(v, digits = 2) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 0.01 && a < 1e4) return Number(v.toPrecision(digits + 1)).toString();
    const [m, e] = v.toExponential(digits - 1).split("e");
    return `${m.replace(/\.0+$/, "")}e${Number(e)}`;
  }
  function pct(v) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    const p = 100 * v;
    return (p >= 10 ? p.toFixed(1) : p >= 1 ? p.toFixed(2) : p.toPrecision(2)) + " %";
  }
  function lamText(log10) {
    const v = Math.pow(10, log10);
    if (Number.isInteger(log10)) return log10 >= 0 && log10 <= 4 ? String(v) : `1e${log10}`;
    return sci(v, 3);
  }
  function decadeLabel(e) {
    return e >= 0 && e <= 3 ? String(Math.pow(10, e)) : e === -1 ? "0.1" : e === -2 ? "0.01" : `1e${e}`;
  }
  function niceStep(span, n) {
    const raw = span / Math.max(n, 1), p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
  }

  // ------------------------------------------------------------------ charts

  /** A line/scatter chart on a canvas with optional log axes, bands and vertical markers. */
  class Plot {
    constructor(canvas, opts) {
      this.canvas = canvas;
      this.opts = Object.assign({ xlog: false, ylog: true, xlabel: "", ylabel: "", empty: "no data yet" }, opts);
      this.series = []; this.xbands = []; this.ybands = []; this.vlines = []; this.brackets = [];
      this.pending = false;
      new ResizeObserver(() => this.request()).observe(canvas);
    }
    set(series) { this.series = series; this.request(); }
    request() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.draw(); });
    }
    _finite(v, log) { return v !== null && v !== undefined && isFinite(v) && (!log || v > 0); }
    _range(axis, log) {
      const fixed = axis === 0 ? this.opts.xrange : this.opts.yrange;
      if (fixed && axis === 0 && this.opts.xexact) return log ? fixed.map(Math.log10) : fixed;
      let lo = Infinity, hi = -Infinity;
      for (const s of this.series) for (const p of s.points) {
        const v = p[axis];
        if (this._finite(v, log)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      }
      if (!isFinite(lo)) return null;
      if (fixed) { lo = Math.min(lo, fixed[0]); hi = Math.max(hi, fixed[1]); }
      if (log) {
        const a = Math.floor(Math.log10(lo) + 1e-9);
        let b = Math.ceil(Math.log10(hi) - 1e-9);
        if (b <= a) b = a + 1;
        return [a, b];
      }
      if (hi === lo) { lo -= 1; hi += 1; }
      const pad = 0.05 * (hi - lo);
      return [lo - pad, hi + pad];
    }
    draw() {
      const c = this.canvas, dpr = window.devicePixelRatio || 1;
      const w = c.clientWidth, h = c.clientHeight;
      if (!w || !h) return;
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
      const g = c.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, h);
      g.font = "12px system-ui, sans-serif";
      const m = { l: 54, r: 12, t: this.series.length ? 24 : 10, b: 34 };
      const pw = w - m.l - m.r, ph = h - m.t - m.b;
      const { xlog, ylog } = this.opts;
      const xr = this._range(0, xlog), yr = this._range(1, ylog);
      let drawn = 0;
      if (!xr || !yr) {
        g.fillStyle = "#5b6475"; g.textAlign = "center";
        g.fillText(this.opts.empty, m.l + pw / 2, m.t + ph / 2);
        this._frame(g, m, pw, ph);
        c.dataset.points = "0";
        return;
      }
      const X = (v) => m.l + pw * ((xlog ? Math.log10(v) : v) - xr[0]) / (xr[1] - xr[0]);
      const Y = (v) => m.t + ph * (1 - ((ylog ? Math.log10(v) : v) - yr[0]) / (yr[1] - yr[0]));
      this._bands(g, m, pw, ph, X, Y, xr, yr);
      this._grid(g, m, pw, ph, X, Y, xr, yr);
      g.save();
      g.beginPath(); g.rect(m.l, m.t, pw, ph); g.clip();
      for (const s of this.series) { const k = this._series(g, s, X, Y); if (s.count !== false) drawn += k; }
      for (const v of this.vlines) {
        if (!this._finite(v.x, xlog)) continue;
        g.strokeStyle = v.color || "#1d2330"; g.setLineDash([4, 3]); g.lineWidth = 1.2;
        g.beginPath(); g.moveTo(X(v.x), m.t); g.lineTo(X(v.x), m.t + ph); g.stroke(); g.setLineDash([]);
      }
      for (const b of this.brackets) this._bracket(g, b, X, Y);
      g.restore();
      this._frame(g, m, pw, ph);
      for (const b of this.brackets) this._bracketLabel(g, b, m, ph);
      this._legend(g, m, w);
      c.dataset.points = String(drawn);
    }
    _frame(g, m, pw, ph) {
      g.strokeStyle = "#9aa3b2"; g.lineWidth = 1; g.strokeRect(m.l + 0.5, m.t + 0.5, pw, ph);
      g.fillStyle = "#5b6475"; g.textAlign = "center";
      g.fillText(this.opts.xlabel, m.l + pw / 2, m.t + ph + 30);
      g.save(); g.translate(12, m.t + ph / 2); g.rotate(-Math.PI / 2); g.fillText(this.opts.ylabel, 0, 0); g.restore();
    }
    _ticks(r, log, n) {
      if (log) {
        const span = r[1] - r[0], step = span > 10 ? 3 : span > 6 ? 2 : 1, out = [];
        for (let e = Math.ceil(r[0] / step) * step; e <= r[1]; e += step) out.push({ v: Math.pow(10, e), label: decadeLabel(e) });
        return out;
      }
      const step = niceStep(r[1] - r[0], n), out = [];
      for (let v = Math.ceil(r[0] / step) * step; v <= r[1] + 1e-12; v += step) out.push({ v, label: sci(Math.abs(v) < step / 1e6 ? 0 : v, 2) });
      return out;
    }
    _grid(g, m, pw, ph, X, Y, xr, yr) {
      g.lineWidth = 1; g.fillStyle = "#5b6475";
      g.textAlign = "center"; g.textBaseline = "top";
      for (const t of this._ticks(xr, this.opts.xlog, Math.max(3, pw / 80))) {
        const x = Math.round(X(t.v)) + 0.5;
        g.strokeStyle = "#eceef2"; g.beginPath(); g.moveTo(x, m.t); g.lineTo(x, m.t + ph); g.stroke();
        g.fillText(t.label, x, m.t + ph + 5);
      }
      g.textAlign = "right"; g.textBaseline = "middle";
      for (const t of this._ticks(yr, this.opts.ylog, Math.max(3, ph / 45))) {
        const y = Math.round(Y(t.v)) + 0.5;
        g.strokeStyle = "#eceef2"; g.beginPath(); g.moveTo(m.l, y); g.lineTo(m.l + pw, y); g.stroke();
        g.fillText(t.label, m.l - 6, y);
      }
      g.textBaseline = "alphabetic";
    }
    _bands(g, m, pw, ph, X, Y) {
      const { xlog, ylog } = this.opts;
      for (const b of this.ybands) {
        const y0 = this._finite(b.y0, ylog) ? Y(b.y0) : m.t + ph, y1 = this._finite(b.y1, ylog) ? Y(b.y1) : m.t;
        const top = Math.max(m.t, Math.min(y0, y1)), bot = Math.min(m.t + ph, Math.max(y0, y1));
        if (bot > top) { g.fillStyle = b.color; g.fillRect(m.l, top, pw, bot - top); }
      }
      for (const b of this.xbands) {
        if (!this._finite(b.x0, xlog) || !this._finite(b.x1, xlog)) continue;
        const x0 = Math.max(m.l, X(b.x0)), x1 = Math.min(m.l + pw, X(b.x1));
        g.fillStyle = b.hatch ? this._hatch(g, b.hatch) : b.color;
        g.fillRect(x0, m.t, Math.max(x1 - x0, 2), ph);
        if (b.bar) { g.fillStyle = b.bar; g.fillRect(x0, m.t + ph - 7 - 8 * (b.row || 0), Math.max(x1 - x0, 2), 6); }
      }
    }
    _bracket(g, b, X, Y) {
      // A vertical bracket from y0 to y1 at x with a label: the step-0 ratio of two terms.
      const { xlog, ylog } = this.opts;
      if (![b.x].every((v) => this._finite(v, xlog)) || ![b.y0, b.y1].every((v) => this._finite(v, ylog))) return;
      const x = X(b.x) + 8, y0 = Y(b.y0), y1 = Y(b.y1);
      g.strokeStyle = b.color; g.fillStyle = b.color; g.lineWidth = 1.5;
      g.beginPath(); g.moveTo(x - 4, y0); g.lineTo(x, y0); g.lineTo(x, y1); g.lineTo(x - 4, y1); g.stroke();
    }
    _bracketLabel(g, b, m, ph) {
      // The bracket's text sits in the x-axis label row, left of the axis title, never on the curves.
      g.font = "bold 12px system-ui, sans-serif"; g.textAlign = "left"; g.textBaseline = "alphabetic";
      g.fillStyle = b.color; g.fillText(`▮ ${b.text}`, m.l, m.t + ph + 30);
      g.font = "12px system-ui, sans-serif";
    }
    _hatch(g, color) {
      // Diagonal lines: a second shaded zone stays readable where it overlaps the first.
      const t = document.createElement("canvas");
      t.width = t.height = 8;
      const h = t.getContext("2d");
      h.strokeStyle = color; h.lineWidth = 1.2;
      h.beginPath(); h.moveTo(0, 8); h.lineTo(8, 0); h.stroke();
      return g.createPattern(t, "repeat");
    }
    _series(g, s, X, Y) {
      const { xlog, ylog } = this.opts;
      let n = 0, open = false;
      g.strokeStyle = s.color; g.fillStyle = s.color; g.lineWidth = s.width || 1.8;
      g.setLineDash(s.dash || []);
      if (!s.markersOnly) {
        g.beginPath();
        for (const p of s.points) {
          if (!this._finite(p[0], xlog) || !this._finite(p[1], ylog)) { open = false; continue; }
          const x = X(p[0]), y = Y(p[1]);
          if (open) g.lineTo(x, y); else g.moveTo(x, y);
          open = true;
          if (!s.markers) n++;
        }
        g.stroke();
      }
      g.setLineDash([]);
      if (s.markers || s.markersOnly) {
        for (const p of s.points) {
          if (!this._finite(p[0], xlog) || !this._finite(p[1], ylog)) continue;
          g.beginPath(); g.arc(X(p[0]), Y(p[1]), s.radius || 3.5, 0, 2 * Math.PI);
          if (s.hollow) { g.fillStyle = "#fff"; g.fill(); g.stroke(); } else g.fill();
          n++;
        }
      }
      return n;
    }
    _legend(g, m, w) {
      let x = w - m.r;
      g.textAlign = "right"; g.textBaseline = "middle"; g.font = "12px system-ui, sans-serif";
      for (const s of [...this.series].reverse()) {
        if (!s.label) continue;
        const tw = g.measureText(s.label).width;
        g.fillStyle = "#1d2330"; g.fillText(s.label, x, 11);
        x -= tw + 6;
        g.strokeStyle = s.color; g.lineWidth = 2; g.setLineDash(s.dash || []);
        if (s.markersOnly) { g.fillStyle = s.color; g.beginPath(); g.arc(x - 6, 11, 3.5, 0, 2 * Math.PI); g.fill(); }
        else { g.beginPath(); g.moveTo(x - 16, 11); g.lineTo(x, 11); g.stroke(); }
        g.setLineDash([]);
        x -= 30;
      }
      g.textBaseline = "alphabetic";
    }
  }

  const DIVERGING = [[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199], [239, 138, 98], [178, 24, 43]];
  const SEQUENTIAL = [[252, 253, 191], [254, 176, 120], [241, 96, 93], [183, 55, 121], [114, 31, 129], [44, 17, 95], [0, 0, 4]];
  function colour(map, t) {
    t = Math.min(1, Math.max(0, t)) * (map.length - 1);
    const i = Math.min(map.length - 2, Math.floor(t)), f = t - i;
    return map[i].map((c, k) => Math.round(c + f * (map[i + 1][k] - c)));
  }

  /** A heat map of a field on a grid (first input horizontal, second vertical) with a colour bar. */
  class Heat {
    constructor(canvas, title) { this.canvas = canvas; this.title = title; this.data = null; new ResizeObserver(() => this.draw()).observe(canvas); }
    set(data) { this.data = data; this.draw(); }
    draw() {
      const c = this.canvas, d = this.data, dpr = window.devicePixelRatio || 1;
      const w = c.clientWidth, h = c.clientHeight;
      if (!w || !h) return;
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
      const g = c.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, w, h);
      g.font = "12px system-ui, sans-serif"; g.fillStyle = "#1d2330"; g.textAlign = "center";
      g.fillText(this.title, w / 2, 13);
      if (!d) { c.dataset.points = "0"; return; }
      const m = { l: 30, r: 40, t: 22, b: 30 }, pw = w - m.l - m.r, ph = h - m.t - m.b;
      const [nx, ny] = d.shape, img = new ImageData(nx, ny);
      for (let i = 0; i < nx; i++) for (let j = 0; j < ny; j++) {
        const v = d.values[i * ny + j], k = 4 * ((ny - 1 - j) * nx + i);
        const rgb = v === null ? [200, 200, 200] : colour(d.map, (v - d.vmin) / (d.vmax - d.vmin || 1));
        img.data[k] = rgb[0]; img.data[k + 1] = rgb[1]; img.data[k + 2] = rgb[2]; img.data[k + 3] = 255;
      }
      const off = document.createElement("canvas");
      off.width = nx; off.height = ny; off.getContext("2d").putImageData(img, 0, 0);
      g.imageSmoothingEnabled = true; g.drawImage(off, m.l, m.t, pw, ph);
      g.strokeStyle = "#9aa3b2"; g.strokeRect(m.l + 0.5, m.t + 0.5, pw, ph);
      for (let k = 0; k < ph; k++) { const rgb = colour(d.map, 1 - k / ph); g.fillStyle = `rgb(${rgb})`; g.fillRect(m.l + pw + 8, m.t + k, 9, 1.5); }
      g.fillStyle = "#5b6475"; g.textAlign = "left"; g.font = "10px system-ui, sans-serif";
      g.fillText(sci(d.vmax), m.l + pw + 19, m.t + 8); g.fillText(sci(d.vmin), m.l + pw + 19, m.t + ph);
      g.font = "12px system-ui, sans-serif"; g.textAlign = "center";
      g.fillText(`${d.xlabel}: ${sci(d.x0)} … ${sci(d.x1)}`, m.l + pw / 2, m.t + ph + 18);
      g.save(); g.translate(m.l - 10, m.t + ph / 2); g.rotate(-Math.PI / 2); g.fillText(d.ylabel, 0, 0); g.restore();
      c.dataset.points = String(nx * ny);
    }
  }

  // ------------------------------------------------------------------ state and charts

  const charts = {
    loss: new Plot($("chart-loss"), { xlabel: "step", ylabel: "loss" }),
    grad: new Plot($("chart-grad"), { xlabel: "step", ylabel: "gradient norm" }),
    solution: new Plot($("chart-solution"), { xlabel: "t", ylabel: "u", ylog: false, empty: "the learned solution appears after a fit" }),
    sweep: new Plot($("chart-sweep"), { xlabel: "λ", ylabel: "rel-L2", xlog: true, empty: "press Sweep: one fit per λ",
                                        xrange: [Math.pow(10, -3.4), Math.pow(10, 5.4)], xexact: true, yrange: [1e-3, 1] }),
    heat: [new Heat($("heat-pred"), "prediction"), new Heat($("heat-exact"), "reference"), new Heat($("heat-err"), "|error|")],
  };
  const state = { cat: null, problem: null, fit: null, sweep: null, rows: [], terms: [], points: [] };

  function info(text, kind = "error") {
    const el = $("message");
    el.hidden = !text; el.textContent = text || ""; el.className = `message ${kind === "info" ? "info" : ""}`;
  }

  async function api(path, body) {
    const opts = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const r = await fetch(path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = { error: `HTTP ${r.status}` }; }
    return { ok: r.ok, status: r.status, data };
  }

  // ------------------------------------------------------------------ controls

  function currentProblem() { return state.cat.problems[$("problem").value]; }
  function softTerms() { return currentProblem().terms.filter((t) => t !== "pde"); }

  function buildSliders() {
    const box = $("sliders");
    box.textContent = "";
    for (const term of softTerms()) {
      const wrap = document.createElement("div");
      wrap.className = "slider";
      const id = `lam-${term}`;
      wrap.innerHTML = `<label for="${id}"><span>log<sub>10</sub> λ<sub>${term}</sub></span><output id="${id}-out" for="${id}"></output></label>` +
        `<input type="range" id="${id}" data-term="${term}" min="${LAM_LO}" max="${LAM_HI}" step="0.25" value="0">` +
        `<div class="ticks" aria-hidden="true">${[-3, -1, 1, 3, 5].map((e) => `<span>${decadeLabel(e)}</span>`).join("")}</div>`;
      box.appendChild(wrap);
      const input = wrap.querySelector("input");
      input.addEventListener("input", () => { showLambda(input); drawSweep(); });
      input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); train(); } });
      showLambda(input);
    }
  }
  function showLambda(input) {
    const v = Number(input.value);
    $(`${input.id}-out`).textContent = `λ = ${lamText(v)}`;
    input.setAttribute("aria-valuetext", `log10 lambda ${v}, lambda ${lamText(v)}`);
  }

  function onProblem() {
    stopFit(); stopSweep();       // their rows belong to the previous problem
    $("cancel").disabled = true;
    const p = currentProblem();
    $("problem-desc").textContent = PRETTY[$("problem").value] || p.description;
    buildSliders();
    const hard = $("scheme").querySelector('option[value="hard"]');
    hard.disabled = !p.hard_constraint;
    if (hard.disabled && $("scheme").value === "hard") $("scheme").value = "fixed";
    $("sweep-term").innerHTML = softTerms().map((t) => `<option value="${t}">λ_${t}</option>`).join("");
    const twoD = p.inputs.length === 2;
    $("chart-solution").hidden = twoD;
    $("heatmaps").hidden = !twoD;
    $("solution-caption").textContent = twoD ? `Solution on (${p.inputs.join(", ")}): prediction, reference, |error|`
      : `Solution: learned ${"u"}(${p.inputs[0]}) against the exact one`;
    charts.solution.opts.xlabel = p.inputs[0];
    onScheme();
    resetFit();
    state.points = []; state.sweepOpts = []; state.sweepTerm = null;
    $("sweep-caption").textContent = SWEEP_CAPTION;
    $("goldilocks").textContent = "";
    $("chart-sweep").dataset.done = "false";
    drawSweep(); fillTable();
  }

  function onScheme() {
    const scheme = $("scheme").value, note = $("scheme-note");
    const fixed = scheme === "fixed";
    for (const input of $("sliders").querySelectorAll("input")) {
      input.disabled = !fixed;
      input.closest(".slider").setAttribute("aria-disabled", String(!fixed));
    }
    const info = state.cat.scheme_info[scheme] || {};
    note.hidden = fixed; note.textContent = fixed ? "" : `${info.label}: ${info.description}.`;
  }

  function onOptimizer() {
    const opt = $("optimizer").value, info = optInfo(opt);
    $("second-steps").disabled = !info.two_phase;
    if (info.two_phase) $("second-steps").value = info.second_steps;
    // Steps count the first phase's iterations (Adam steps, or LM iterations for LM alone);
    // each first-phase optimizer keeps its own value across switches.
    const steps = $("steps"), label = info.first_label, was = state.lastLabel;
    if (was !== undefined && label !== was) {
      state.savedSteps = state.savedSteps || {};
      state.savedSteps[was] = steps.value;
      steps.value = state.savedSteps[label] || info.default_steps;
    }
    steps.max = info.max_steps;
    $("steps-label").textContent = label;
    state.lastLabel = label;
  }

  function intField(id, name) {
    // Checked here against the input's bounds (the server's limits) so that a typo does not
    // cost a request; the server checks again.
    const el = $(id), v = Number(el.value), lo = Number(el.min), hi = el.max === "" ? Infinity : Number(el.max);
    if (el.value.trim() === "" || !Number.isInteger(v) || v < lo || v > hi)
      throw new Error(`${name} must be a whole number from ${lo}${isFinite(hi) ? ` to ${hi}` : " up"}, got ${el.value || "nothing"}`);
    return v;
  }
  function numField(id, name) {
    const el = $(id), v = Number(el.value), lo = Number(el.min), hi = Number(el.max);
    if (el.value.trim() === "" || !isFinite(v) || v < lo || v > hi) throw new Error(`${name} must be a number from ${lo} to ${hi}, got ${el.value || "nothing"}`);
    return v;
  }

  function fitBody() {
    const body = { problem: $("problem").value, scheme: $("scheme").value, optimizer: $("optimizer").value,
                   steps: intField("steps", $("steps-label").textContent), lr: numField("lr", "Learning rate"),
                   seed: intField("seed", "Seed") };
    const widths = $("widths").value.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
    const lim = state.cat.limits;
    if (!widths.length || widths.length > lim.hidden_layers || widths.some((w) => !Number.isInteger(w) || w < 1 || w > lim.width))
      throw new Error(`Hidden widths must be 1 to ${lim.hidden_layers} whole numbers from 1 to ${lim.width}, like 50,50,50`);
    body.widths = widths;
    if (body.scheme === "fixed") {
      body.weights = {};
      for (const input of $("sliders").querySelectorAll("input")) body.weights[input.dataset.term] = Math.pow(10, Number(input.value));
    }
    if (optInfo(body.optimizer).two_phase) body.second_steps = intField("second-steps", "Second-phase iterations");
    return body;
  }

  async function post(path, body, what) {
    for (let attempt = 0; attempt < 30; attempt++) {
      const r = await api(path, body);
      if (r.status !== 429) return r;
      info(`The server is busy (${r.data.error}); retrying…`, "info");
      await new Promise((res) => setTimeout(res, 1000));
    }
    return { ok: false, status: 429, data: { error: `the server stayed busy; ${what} not started` } };
  }

  // ------------------------------------------------------------------ a fit

  function resetFit() {
    state.rows = [];
    drawRows();
    setVerdict("idle", null, "press Train");
    $("timing").textContent = "";
    const b = $("balance");
    b.dataset.crisis = "unknown"; $("ratio").textContent = "—"; $("weights-now").textContent = "";
    $("balance-text").innerHTML = "max/min of λ<sub>a</sub>‖∇L<sub>a</sub>‖ at the first step; above 10² is a crisis";
    charts.solution.set([]);
    for (const hm of charts.heat) hm.set(null);
  }

  function setVerdict(st, rel, text) {
    const v = $("verdict");
    v.dataset.state = st;
    v.dataset.verdict = st === "done" ? text : "";
    v.dataset.relL2 = rel === null || rel === undefined ? "" : String(rel);
    $("rel-l2").textContent = pct(rel);
    $("verdict-text").textContent = text;
  }

  function stopFit() {
    const f = state.fit;
    if (!f) return;
    f.closed = true;
    if (f.es) f.es.close();
    if (f.id && !f.ended) api(`/api/fits/${f.id}/cancel`, {});
    state.fit = null;
  }

  async function train() {
    let body;
    try { body = fitBody(); } catch (e) { info(e.message); return; }
    stopFit();
    info("");
    resetFit();
    state.terms = body.scheme === "hard" ? ["pde"] : currentProblem().terms;
    const fit = { t0: performance.now(), ended: false, closed: false, steps: body.steps };
    state.fit = fit;
    setVerdict("running", null, "training…");
    $("cancel").disabled = false;
    const r = await post("/api/fits", body, "the fit");
    if (fit.closed) return;
    if (!r.ok) { info(`${r.data.field ? r.data.field + ": " : ""}${r.data.error}`); setVerdict("idle", null, "not started"); $("cancel").disabled = true; state.fit = null; return; }
    info("");
    fit.id = r.data.id;
    const es = new EventSource(r.data.events);
    fit.es = es;
    es.addEventListener("log", (e) => { if (!fit.closed) onRow(JSON.parse(e.data)); });
    es.addEventListener("end", (e) => { if (!fit.closed) onEnd(fit, JSON.parse(e.data)); });
    es.addEventListener("shutdown", () => { es.close(); info("The server stopped."); setVerdict("done", null, "server stopped"); finishFit(fit); });
    es.onerror = () => { if (!fit.ended && !fit.closed && es.readyState === EventSource.CLOSED) { info("Lost the connection to the server."); finishFit(fit); } };
  }

  function onRow(row) {
    state.rows.push(row);
    if (state.rows.length === 1) showBalance(row);
    const f = state.fit;
    if (f) setVerdict("running", row.rel_l2, `step ${row.step} of ${f.steps}…`);
    $("weights-now").textContent = `weights λ at step ${row.step}: ` +
      state.terms.map((t) => `${t} ${sci(row[`${t}_weight`], 3)}`).join(", ") + (row.phase && row.phase !== "adam" ? ` (${row.phase})` : "");
    drawRows();
  }

  function showBalance(row) {
    const terms = state.terms, b = $("balance");
    if (terms.length < 2) {
      b.dataset.crisis = "false"; $("ratio").textContent = "1 term";
      $("balance-text").textContent = "a single loss term (the hard constraint meets the initial conditions exactly): nothing to balance";
      return;
    }
    const scaled = terms.map((t) => [t, row[`${t}_weight`] * row[`${t}_grad_norm`]]).filter((p) => p[1] > 0);
    scaled.sort((a, b2) => b2[1] - a[1]);
    const [hi, lo] = [scaled[0], scaled[scaled.length - 1]];
    const ratio = hi[1] / lo[1];
    const crisis = ratio > CRISIS;
    b.dataset.crisis = String(crisis);
    b.dataset.ratio = String(ratio);
    $("ratio").textContent = `${sci(ratio)}×`;
    $("balance-text").innerHTML = crisis
      ? `<strong>crisis</strong> (&gt; 10²): λ‖∇L‖ of <b>${hi[0]}</b> is ${sci(ratio)}× that of <b>${lo[0]}</b>; gradient descent will fit ${hi[0]} and neglect ${lo[0]}`
      : `balanced within 10²: λ‖∇L‖ of ${hi[0]} is ${sci(ratio)}× that of ${lo[0]}`;
  }

  function drawRows() {
    const rows = state.rows, terms = state.terms;
    const col = (t) => TERM_COLORS[t] || "#555";
    const loss = terms.map((t) => ({ label: `L_${t}`, color: col(t), points: rows.map((r) => [r.step, r[`${t}_loss`]]) }));
    if (rows.length && rows[0].rel_l2 !== undefined) loss.push({ label: "rel-L2", color: "#6b7280", dash: [2, 3], points: rows.map((r) => [r.step, r.rel_l2]) });
    charts.loss.set(rows.length ? loss : []);
    const grad = [];
    for (const t of terms) {
      grad.push({ label: `λ‖∇L_${t}‖`, color: col(t), points: rows.map((r) => [r.step, r[`${t}_weight`] * r[`${t}_grad_norm`]]) });
      grad.push({ color: col(t), dash: [5, 4], width: 1.2, points: rows.map((r) => [r.step, r[`${t}_grad_norm`]]) });
    }
    charts.grad.brackets = [];
    if (rows.length && terms.length > 1) {
      const r0 = rows[0], v = terms.map((t) => r0[`${t}_weight`] * r0[`${t}_grad_norm`]).filter((x) => x > 0);
      const hi = Math.max(...v), lo = Math.min(...v), ratio = hi / lo;
      charts.grad.brackets = [{ x: r0.step, y0: lo, y1: hi, text: `×${sci(ratio)} at step 0`, color: ratio > CRISIS ? "#c53030" : "#1f8a4c" }];
    }
    charts.grad.set(rows.length ? grad : []);
  }

  async function onEnd(fit, s) {
    fit.ended = true;
    fit.es.close();
    const ms = performance.now() - fit.t0;
    const ok = s.status === "completed" || s.status === "converged";
    setVerdict("done", s.rel_l2, ok ? verdictLabel(s.verdict) : s.status);
    $("verdict").dataset.verdict = ok ? s.verdict : s.status;
    $("verdict").dataset.clickMs = String(Math.round(ms));
    $("timing").textContent = `${s.step} steps · fit ${s.wall_time ? s.wall_time.toFixed(2) : "—"} s on the server` +
      (s.cpu_time ? ` (${s.cpu_time.toFixed(2)} s CPU)` : "") + ` · click → verdict ${(ms / 1000).toFixed(2)} s` +
      (s.message ? ` · ${s.message}` : "");
    finishFit(fit);
    if (s.status === "failed") { info(s.message); return; }
    const r = await api(`/api/fits/${fit.id}/solution`);
    if (r.ok && state.fit === null) drawSolution(r.data);
  }
  function verdictLabel(v) { return v === "clean" ? "clean fit" : v; }
  function finishFit(fit) {
    if (state.fit === fit) state.fit = null;
    $("cancel").disabled = true;
  }

  function drawSolution(sol) {
    if (sol.shape.length === 1) {
      const x = sol.axes[sol.inputs[0]];
      const series = [{ label: "learned u", color: "#2457c5", width: 2.2, points: x.map((v, i) => [v, sol.prediction[i]]) }];
      if (sol.exact) series.push({ label: "exact", color: "#1d2330", dash: [6, 4], width: 1.4, points: x.map((v, i) => [v, sol.exact[i]]) });
      charts.solution.set(series);
      return;
    }
    const [a, b] = sol.inputs, ax = sol.axes[a];
    const ref = sol.exact || sol.prediction, absMax = (xs) => xs.reduce((m, v) => (v === null ? m : Math.max(m, Math.abs(v))), 0);
    const vmax = Math.max(absMax(ref), absMax(sol.prediction)) || 1;
    const common = { shape: sol.shape, xlabel: a, ylabel: b, x0: ax[0], x1: ax[ax.length - 1] };
    charts.heat[0].set(Object.assign({ values: sol.prediction, vmin: -vmax, vmax, map: DIVERGING }, common));
    charts.heat[1].set(sol.exact ? Object.assign({ values: sol.exact, vmin: -vmax, vmax, map: DIVERGING }, common) : null);
    if (sol.exact) {
      const err = sol.prediction.map((v, i) => (v === null || sol.exact[i] === null ? null : Math.abs(v - sol.exact[i])));
      charts.heat[2].set(Object.assign({ values: err, vmin: 0, vmax: absMax(err) || 1, map: SEQUENTIAL }, common));
    }
  }

  // ------------------------------------------------------------------ a sweep

  function sweepBody() {
    const body = fitBody();
    const most = Math.min(optInfo(body.optimizer).max_steps, state.cat.limits.sweep_steps);
    if (body.steps > most)
      throw new Error(`A sweep runs at most ${most} ${optInfo(body.optimizer).first_label} per fit`);
    body.scheme = "fixed";
    if (!body.weights) body.weights = {};
    const term = $("sweep-term").value;
    delete body.weights[term];
    body.term = term;
    body.log10 = { lo: LAM_LO, hi: LAM_HI, n: intField("sweep-n", "λ values") };
    const k = intField("sweep-seeds", "Seeds");
    body.seeds = Array.from({ length: k }, (_, i) => body.seed + i);
    const second = $("sweep-second").value;
    body.optimizers = [body.optimizer];
    if (second !== "none" && second !== body.optimizer) body.optimizers.push(second);
    if (!optInfo(body.optimizer).two_phase) delete body.second_steps;
    return body;
  }

  async function sweep() {
    let body;
    try { body = sweepBody(); } catch (e) { info(e.message); return; }
    stopSweep();
    info("");
    const sw = { t0: performance.now(), ended: false, closed: false, body, n: body.log10.n * body.seeds.length * body.optimizers.length };
    state.sweep = sw;
    state.points = [];
    state.sweepTerm = body.term;
    state.sweepOpts = body.optimizers;
    drawSweep(); fillTable();
    $("chart-sweep").dataset.done = "false";
    $("sweep-cancel").disabled = false;
    $("train").disabled = true; $("sweep").disabled = true;   // one thing at a time while the sweep runs
    $("sweep-caption").textContent = `λ sweep of λ_${body.term}: starting ${sw.n} fits…`;
    const r = await post("/api/sweeps", body, "the sweep");
    if (sw.closed) return;
    if (!r.ok) { info(`${r.data.field ? r.data.field + ": " : ""}${r.data.error}`); endSweep(sw); return; }
    info("");
    sw.id = r.data.id;
    const es = new EventSource(r.data.events);
    sw.es = es;
    es.addEventListener("point", (e) => { if (!sw.closed) onPoint(sw, JSON.parse(e.data)); });
    es.addEventListener("end", (e) => { if (!sw.closed) onSweepEnd(sw, JSON.parse(e.data)); });
    es.addEventListener("shutdown", () => { es.close(); info("The server stopped."); endSweep(sw); });
    es.onerror = () => { if (!sw.ended && !sw.closed && es.readyState === EventSource.CLOSED) { info("Lost the connection to the server."); endSweep(sw); } };
  }

  function onPoint(sw, p) {
    state.points.push(p);
    $("sweep-caption").textContent = `λ sweep of λ_${sw.body.term}: ${state.points.length} of ${sw.n} fits · ${((performance.now() - sw.t0) / 1000).toFixed(1)} s`;
    drawSweep(); fillTable();
  }

  function onSweepEnd(sw, s) {
    sw.ended = true;
    sw.es.close();
    const secs = (performance.now() - sw.t0) / 1000;
    $("sweep-caption").textContent = `λ sweep of λ_${sw.body.term}: ${s.points} of ${s.requested} fits in ${secs.toFixed(1)} s` +
      (s.status !== "completed" ? ` (${s.status})` : "");
    $("chart-sweep").dataset.done = "true";
    $("chart-sweep").dataset.seconds = secs.toFixed(3);
    $("chart-sweep").dataset.cpu = state.points.reduce((a, p) => a + (p.cpu_time || 0), 0).toFixed(3);
    endSweep(sw);
  }
  function endSweep(sw) {
    if (state.sweep === sw) state.sweep = null;
    $("sweep-cancel").disabled = true;
    if (!state.sweep) { $("train").disabled = false; $("sweep").disabled = false; }
  }
  function stopSweep() {
    const sw = state.sweep;
    if (!sw) return;
    sw.closed = true;
    if (sw.es) sw.es.close();
    if (sw.id && !sw.ended) api(`/api/sweeps/${sw.id}/cancel`, {});
    endSweep(sw);
  }

  function median(xs) { const s = [...xs].sort((a, b) => a - b), n = s.length; return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]); }

  /** Per optimizer: median rel-L2 at each λ and the clean (Goldilocks) spans of consecutive λ. */
  function sweepCurves() {
    const out = [];
    (state.sweepOpts || []).forEach((opt, k) => {
      const by = new Map();
      for (const p of state.points) if (p.optimizer === opt) {
        if (!by.has(p.lambda)) by.set(p.lambda, []);
        by.get(p.lambda).push(p.rel_l2 === null ? Infinity : p.rel_l2);
      }
      const lams = [...by.keys()].sort((a, b) => a - b);
      const med = lams.map((l) => [l, median(by.get(l))]);
      const spans = [];
      let cur = null;
      for (const [l, e] of med) {
        if (e < CLEAN) { if (cur) cur[1] = l; else cur = [l, l]; } else if (cur) { spans.push(cur); cur = null; }
      }
      if (cur) spans.push(cur);
      out.push({ opt, color: OPT_COLORS[k], med, spans, by, row: k });
    });
    return out;
  }

  function drawSweep() {
    const curves = sweepCurves(), series = [], xb = [];
    for (const c of curves) {
      const name = optLabel(c.opt);
      series.push({ label: `${name} (median)`, color: c.color, width: 1.6, count: false, points: c.med.map(([l, e]) => [l, isFinite(e) ? e : null]) });
      series.push({ color: c.color, markersOnly: true, radius: 3.5, hollow: c.row === 1,
                    points: state.points.filter((p) => p.optimizer === c.opt).map((p) => [p.lambda, p.rel_l2]) });
      const step = c.med.length > 1 ? Math.pow(c.med[1][0] / c.med[0][0], 0.5) : 1.5;
      for (const s of c.spans) xb.push({ x0: s[0] / step, x1: s[1] * step, color: "rgba(36,87,197,0.09)",
                                          hatch: c.row ? "rgba(221,107,32,0.28)" : null, bar: c.color, row: c.row });
    }
    const p = charts.sweep;
    p.xbands = xb;
    p.ybands = [{ y0: null, y1: CLEAN, color: "rgba(31,138,76,0.05)" }, { y0: WRONG, y1: null, color: "rgba(197,48,48,0.05)" }];
    const term = state.sweepTerm || (softTerms()[0] || "");
    const slider = $(`lam-${term}`);
    p.vlines = slider && !slider.disabled ? [{ x: Math.pow(10, Number(slider.value)), color: "#6b7280" }] : [];
    p.opts.xlabel = `λ_${term}`;
    p.set(series);
    sweepLegend(curves);
    $("goldilocks").textContent = curves.map((c) => {
      const name = optLabel(c.opt), n = c.med.filter(([, e]) => e < CLEAN).length;
      if (!c.med.length) return "";
      if (!c.spans.length) return `${name}: no clean fit yet`;
      return `${name}: Goldilocks zone ` + c.spans.map((s) => s[0] === s[1] ? `λ = ${sci(s[0])}` : `λ ∈ [${sci(s[0])}, ${sci(s[1])}]`).join(", ") +
        ` (${n} of ${c.med.length} λ clean)`;
    }).filter(Boolean).join(" · ");
  }

  /** What the sweep chart's shading, hatching and bars mean (one entry per optimizer drawn). */
  function sweepLegend(curves) {
    const sw = (cls) => `<span class="swatch ${cls}"></span>`;   // colours in style.css (no inline styles: CSP)
    const items = [
      `${sw("clean")} rel-L2 &lt; ${Math.round(CLEAN * 100)} % (clean)`,
      `${sw("wrong")} rel-L2 ≥ ${Math.round(WRONG * 100)} %`,
    ];
    for (const c of curves)
      items.push(`${sw(`zone${c.row}`)}${sw(`bar${c.row}`)} ${optLabel(c.opt)}: Goldilocks zone (${c.row ? "hatching" : "shading"}) and its span (bar)`);
    $("sweep-legend").innerHTML = items.join(" · ");
  }

  function fillTable() {
    const rows = [...state.points].sort((a, b) => a.lambda - b.lambda || a.optimizer.localeCompare(b.optimizer) || a.seed - b.seed);
    $("sweep-table").querySelector("tbody").innerHTML = rows.map((p) =>
      `<tr><td>${sci(p.lambda, 3)}</td><td>${optLabel(p.optimizer)}</td><td>${p.seed}</td><td>${pct(p.rel_l2)}</td>` +
      `<td>${p.status === "completed" || p.status === "converged" ? p.verdict : p.status}</td><td>${p.wall_time ? p.wall_time.toFixed(2) + " s" : "—"}</td></tr>`).join("");
  }

  // ------------------------------------------------------------------ start

  async function init() {
    const r = await api("/api");
    if (!r.ok) { info(`Cannot read the catalogue: ${r.data.error}`); return; }
    const cat = r.data;
    state.cat = cat;
    CLEAN = cat.verdict.clean; WRONG = cat.verdict.wrong;
    $("problem").innerHTML = Object.keys(cat.problems).map((k) => `<option value="${k}">${k}</option>`).join("");
    $("scheme").innerHTML = Object.keys(cat.schemes).map((k) =>
      `<option value="${k}" title="${cat.scheme_info[k].description}">${cat.scheme_info[k].label}</option>`).join("");
    $("scheme").value = "fixed";
    $("optimizer").innerHTML = Object.keys(cat.optimizers).map((k) =>
      `<option value="${k}" title="${cat.optimizers[k]}">${optLabel(k)}</option>`).join("");
    const first = Object.keys(cat.optimizers)[0];
    const second = Object.keys(cat.optimizers).filter((k) => k !== first);
    $("sweep-second").innerHTML = `<option value="none">none</option>` +
      second.map((k) => `<option value="${k}">${optLabel(k)}</option>`).join("");
    // Side by side by default: the first second-order optimizer that runs alone (from random init).
    const pick = second.find((k) => cat.optimizer_info[k].second_order && !cat.optimizer_info[k].two_phase);
    if (pick) $("sweep-second").value = pick;
    $("problem").addEventListener("change", onProblem);
    $("scheme").addEventListener("change", onScheme);
    $("optimizer").addEventListener("change", onOptimizer);
    $("fit-form").addEventListener("submit", (e) => { e.preventDefault(); train(); });
    $("cancel").addEventListener("click", () => { const f = state.fit; stopFit(); if (f) { setVerdict("done", null, "cancelled"); $("cancel").disabled = true; } });
    $("sweep-form").addEventListener("submit", (e) => { e.preventDefault(); sweep(); });
    $("sweep-cancel").addEventListener("click", () => { stopSweep(); $("sweep-caption").textContent += " (cancelled)"; });
    onOptimizer();
    onProblem();
    const s = await api("/api/status");
    if (s.ok) $("server-status").textContent = `pinncore server · up to ${s.data.max_fits} fits at once`;
    document.body.dataset.ready = "true";
  }

  init().catch((e) => info(`The page failed to start: ${e.message}`));
})();
