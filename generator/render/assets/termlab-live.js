/* "Run it in your browser": when a reader opens the panel (and not before), load onnxruntime-web
   (its WASM-only build, single thread, from this site), run each of the term's ONNX models on the
   inputs the build recorded beside it (<model>.json), and say per model whether the outputs match
   the build's (numpy.allclose with the recorded atol/rtol) with the largest absolute difference.
   A model whose first input is float with 1-4 features per row also gets sliders for one row;
   moving one runs the model again and shows its outputs for that row. Text only: no markup from
   any file reaches the page. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL("ort/", script ? script.src : location.href);
  var runtime = null;
  var ARRAYS = {float32: Float32Array, float64: Float64Array, int64: BigInt64Array, uint64: BigUint64Array,
                int32: Int32Array, uint32: Uint32Array, int16: Int16Array, uint16: Uint16Array,
                int8: Int8Array, uint8: Uint8Array, bool: Uint8Array};

  function ort() {
    if (!runtime) {
      runtime = import(new URL("ort.wasm.bundle.min.mjs", base).href).then(function (m) {
        var o = m.default && m.default.InferenceSession ? m.default : m;
        o.env.wasm.numThreads = 1;  // no SharedArrayBuffer, so no cross-origin isolation needed
        o.env.wasm.proxy = false;
        o.env.wasm.wasmPaths = {wasm: new URL("ort-wasm-simd-threaded.wasm", base).href};  // its glue is bundled
        return o;
      });
      runtime.catch(function () { runtime = null; });
    }
    return runtime;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmt(v) {
    if (typeof v === "bigint") return v.toString();
    if (!isFinite(v)) return String(v);
    if (v === 0) return "0";
    var a = Math.abs(v);
    return a >= 1e-3 && a < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(2);
  }

  function tensor(o, t, data) {
    var A = ARRAYS[t.type];
    if (!A) throw new Error("input " + t.name + " has type " + t.type);
    var values = (data || t.data).map(Number);
    var arr = A === BigInt64Array || A === BigUint64Array
      ? A.from(values, function (v) { return BigInt(Math.round(v)); }) : A.from(values);
    return new o.Tensor(t.type, arr, t.shape);
  }

  // Largest |got - expected|, whether every value is within atol + rtol * |expected| (numpy.allclose)
  // plus the output's own rounding noise the build measured, and whether that noise was needed.
  function compare(expected, got, atol, rtol) {
    var noise = expected.noise || 0, noisy = false;
    var g = Array.from(got.data, Number);
    var same = g.length === expected.data.length && got.dims.join() === expected.shape.join();
    var max = 0;
    if (!same) return {ok: false, max: NaN, why: "shape " + got.dims.join("×") + ", expected " + expected.shape.join("×")};
    for (var i = 0; i < g.length; i++) {
      var e = Number(expected.data[i]);
      if (expected.type === "float32") e = Math.fround(e);
      if (e === g[i] || (isNaN(e) && isNaN(g[i]))) continue;
      var d = Math.abs(g[i] - e);
      if (!(d <= atol + rtol * Math.abs(e))) {
        if (d <= atol + rtol * Math.abs(e) + noise) noisy = true; else same = false;
      }
      if (!(d <= max)) max = d;
    }
    return {ok: same, max: max, noise: noisy ? noise : 0};
  }

  function say(item, state, text) {
    item.dataset.state = state;
    item.querySelector(".termlab-live-result").textContent = text;
  }

  async function check(o, item) {
    var name = item.dataset.model;
    var responses = await Promise.all([fetch(encodeURIComponent(name)), fetch(encodeURIComponent(name) + ".json")]);
    if (!responses[0].ok || !responses[1].ok) throw new Error("could not fetch the model or its recorded run");
    var bytes = new Uint8Array(await responses[0].arrayBuffer());
    var rec = await responses[1].json();
    if (rec.error) { say(item, "error", "the build could not run it: " + rec.error); return null; }
    var session = await o.InferenceSession.create(bytes, {executionProviders: ["wasm"]});
    var feeds = {};
    rec.inputs.forEach(function (t) { feeds[t.name] = tensor(o, t); });
    var out = await session.run(feeds);
    var worst = 0, bad = [], noisy = [];
    rec.outputs.forEach(function (t) {
      var c = compare(t, out[t.name], rec.atol, rec.rtol);
      if (!(c.max <= worst)) worst = c.max;
      if (!c.ok) bad.push(t.name + (c.why ? " (" + c.why + ")" : ""));
      else if (c.noise) noisy.push(t.name + " moves by up to " + fmt(c.noise));
    });
    if (bad.length) say(item, "mismatch", "does not match the build: " + bad.join(", ") + " differ by up to " +
                        fmt(worst) + " (tolerance " + rec.atol.toExponential() + " + " + rec.rtol.toExponential() + " × |value|)");
    else say(item, "match", "matches the build (largest difference " + fmt(worst) + (noisy.length
      ? "; more than " + rec.atol.toExponential() + ", but within the build's own rounding noise: " + noisy.join(", ") +
        " when the inputs move by one float step" : "") + ")");
    return {session: session, rec: rec};
  }

  function sliders(o, item, run, index) {
    var first = run.rec.inputs[0];
    var dims = first.dims || [];
    var n = dims[dims.length - 1];
    if (!/^float/.test(first.type) || !(n >= 1 && n <= 4)) return;
    var box = el("fieldset", "termlab-live-try");
    box.appendChild(el("legend", "", "Try your own values for one row of “" + first.name + "”"));
    var row = first.data.slice(0, n).map(Number);
    var out = el("p", "termlab-live-out");
    out.setAttribute("aria-live", "polite");
    var busy = Promise.resolve();
    function rerun() {
      busy = busy.then(async function () {
        var data = first.data.map(Number);
        for (var j = 0; j < n; j++) data[j] = row[j];
        var feeds = {};
        run.rec.inputs.forEach(function (t, k) { feeds[t.name] = tensor(o, t, k === 0 ? data : null); });
        var res = await run.session.run(feeds);
        out.textContent = "Output for this row: " + run.rec.outputs.map(function (t) {
          var got = res[t.name], values = Array.from(got.data);
          var per = got.dims.length > 1 && got.dims[0] === first.shape[0] ? values.length / got.dims[0] : values.length;
          var shown = values.slice(0, Math.min(per, 8)).map(fmt).join(", ");
          return t.name + " = " + shown + (per > 8 ? ", …" : "");
        }).join("; ");
      }).catch(function (e) { out.textContent = "Could not run it: " + e.message; });
    }
    for (var j = 0; j < n; j++) (function (j) {
      var values = [];
      for (var i = j; i < first.data.length; i += n) values.push(Number(first.data[i]));
      var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
      var pad = (hi - lo) * 0.1 || 0.5;
      var id = "termlab-live-" + index + "-" + j;
      var line = el("div", "termlab-live-slider");
      var label = el("label", "", first.name + ", feature " + (j + 1));
      label.htmlFor = id;
      var input = el("input");
      input.type = "range"; input.id = id;
      input.min = String(lo - pad); input.max = String(hi + pad);
      input.step = String((hi - lo + 2 * pad) / 200); input.value = String(row[j]);
      var shown = el("output", "", fmt(row[j]));
      shown.htmlFor = id;
      input.addEventListener("input", function () {
        row[j] = Number(input.value);
        shown.textContent = fmt(row[j]);
        rerun();
      });
      line.append(label, input, shown);
      box.appendChild(line);
    })(j);
    box.appendChild(out);
    item.appendChild(box);
    rerun();
  }

  async function start(panel) {
    var status = panel.querySelector(".termlab-live-status");
    var items = Array.from(panel.querySelectorAll("[data-model]"));
    status.textContent = "Loading ONNX Runtime Web…";
    var o;
    try { o = await ort(); } catch (e) {
      status.textContent = "Could not load ONNX Runtime Web: " + e.message;
      panel.dataset.done = "error";
      return;
    }
    status.textContent = "Running " + items.length + (items.length === 1 ? " model…" : " models…");
    for (var i = 0; i < items.length; i++) {
      try {
        var run = await check(o, items[i]);
        if (run) sliders(o, items[i], run, i);
      } catch (e) { say(items[i], "error", "could not run it here: " + (e && e.message || e)); }
    }
    function count(state) { return items.filter(function (it) { return it.dataset.state === state; }).length; }
    var good = count("match"), all = items.length;
    status.textContent = good === all ? (all === 1 ? "The model matches the build." : (all === 2 ? "Both" : "All " + all) + " models match the build.")
      : [count("mismatch") + " of " + all + " do not match the build", count("error") + " could not run"]
        .filter(function (s) { return !/^0 /.test(s); }).join("; ") + ".";
    panel.dataset.done = good === all ? "match" : count("mismatch") ? "mismatch" : "error";
  }

  function mount() {
    document.querySelectorAll("details.termlab-live").forEach(function (panel) {
      panel.addEventListener("toggle", function () {
        if (panel.open && !panel.dataset.started) { panel.dataset.started = "1"; start(panel); }
      });
    });
  }

  if (window.document$) window.document$.subscribe(mount);
  else document.addEventListener("DOMContentLoaded", mount);
})();
