/* The concept map page: the build's SVG (map/graph.svg, laid out at build time) inlined, with
   pan (drag, arrow keys), zoom (wheel, pinch-free buttons, + and -) and a search box that
   highlights matching terms and moves to the first. Without JavaScript the page links the SVG,
   whose dots are links too. Labels hide while zoomed far out, where they would overlap. */
(function () {
  "use strict";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function setup(box, svg) {
    var full = svg.viewBox.baseVal;
    var home = { x: full.x, y: full.y, w: full.width, h: full.height };
    var view = Object.assign({}, home);
    svg.parentNode.style.aspectRatio = home.w + " / " + home.h;  // the map fills its box
    var spacing = parseFloat(svg.getAttribute("data-spacing")) || 60;
    var nodes = Array.prototype.slice.call(svg.querySelectorAll("a.tm-node"));
    var names = nodes.map(function (a) { return (a.getAttribute("aria-label") || "").toLowerCase(); });

    var big = svg.classList.contains("tm-big");
    var at = big ? nodes.map(function (a) {
      var c = a.querySelector("circle");
      return [+c.getAttribute("cx"), +c.getAttribute("cy")];
    }) : null;
    var layer = big ? svg.appendChild(document.createElementNS(svg.namespaceURI, "g")) : null;
    var pending = false;

    function labels() {  // a big map names only the dots in view (its file holds no <text>)
      pending = false;
      layer.textContent = "";
      if (svg.classList.contains("tm-far")) return;
      for (var i = 0, shown = 0; i < at.length && shown < 400; i++) {
        var x = at[i][0], y = at[i][1];
        if (x < view.x || x > view.x + view.w || y < view.y || y > view.y + view.h) continue;
        var t = document.createElementNS(svg.namespaceURI, "text");
        t.setAttribute("x", x + 10); t.setAttribute("y", y + 4);
        t.setAttribute("aria-hidden", "true");
        t.textContent = nodes[i].getAttribute("aria-label");
        layer.appendChild(t);
        shown++;
      }
    }
    function apply() {
      svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].map(function (v) { return v.toFixed(1); }).join(" "));
      var px = svg.clientWidth || 800;  // CSS px across; labels need ~2.5 spacings apart on screen
      svg.classList.toggle("tm-far", view.w / px * 110 > spacing * 2.5);
      if (big && !pending) { pending = true; requestAnimationFrame(labels); }
    }
    function zoom(factor, cx, cy) {
      if (cx === undefined) { cx = view.x + view.w / 2; cy = view.y + view.h / 2; }
      var w = Math.min(Math.max(view.w * factor, spacing * 4), home.w * 4);
      var h = w * view.h / view.w;
      view.x = cx - (cx - view.x) * w / view.w;
      view.y = cy - (cy - view.y) * h / view.h;
      view.w = w; view.h = h;
      apply();
    }
    function pan(dx, dy) { view.x += dx * view.w; view.y += dy * view.h; apply(); }
    function centre(a) {
      var c = a.querySelector("circle");
      var w = Math.min(home.w, spacing * 12);
      var h = w * home.h / home.w;
      view = { x: +c.getAttribute("cx") - w / 2, y: +c.getAttribute("cy") - h / 2, w: w, h: h };
      apply();
    }

    var tools = el("div", { class: "termlab-map-tools" });
    var label = el("label", { for: "termlab-map-search" }, "Find a term");
    var search = el("input", { id: "termlab-map-search", type: "search", autocomplete: "off",
                               "aria-describedby": "termlab-map-status" });
    var status = el("p", { id: "termlab-map-status", role: "status", class: "termlab-map-status" });
    tools.appendChild(label);
    tools.appendChild(search);
    [["Zoom in", "+", function () { zoom(1 / 1.5); }],
     ["Zoom out", "\u2212", function () { zoom(1.5); }],
     ["Reset the view to the whole map", "Reset", function () { view = Object.assign({}, home); apply(); }]
    ].forEach(function (b) {
      var button = el("button", { type: "button", class: "md-button", "aria-label": b[0], title: b[0] }, b[1]);
      button.addEventListener("click", b[2]);
      tools.appendChild(button);
    });
    box.insertBefore(status, box.firstChild);
    box.insertBefore(tools, status);

    search.addEventListener("input", function () {
      var q = search.value.trim().toLowerCase();
      var hits = 0;
      var first = null;
      nodes.forEach(function (a, i) {
        var hit = q && names[i].indexOf(q) !== -1;
        a.classList.toggle("tm-hit", !!hit);
        if (hit) { hits += 1; if (!first) first = a; }
      });
      svg.classList.toggle("tm-searching", !!q && !svg.classList.contains("tm-big"));  // dimming 10,000 dots is slow
      status.textContent = q ? (hits ? hits + (hits === 1 ? " term matches" : " terms match") +
        "; press Enter to go to " + (hits === 1 ? "it" : "the first") : "No term matches") : "";
      if (first) centre(first);
    });
    search.addEventListener("keydown", function (e) {
      if (e.key !== "Enter") return;
      var first = svg.querySelector("a.tm-hit");
      if (first) { e.preventDefault(); centre(first); first.focus(); }
    });

    var frame = svg.parentNode;
    frame.addEventListener("keydown", function (e) {
      var step = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, -0.1], ArrowDown: [0, 0.1] }[e.key];
      if (step) { e.preventDefault(); pan(step[0], step[1]); }
      else if (e.key === "+" || e.key === "=") { e.preventDefault(); zoom(1 / 1.5); }
      else if (e.key === "-") { e.preventDefault(); zoom(1.5); }
    });
    frame.addEventListener("focusin", function (e) {  // a node reached by Tab comes into view
      var a = e.target.closest && e.target.closest("a.tm-node");
      if (!a) return;
      var c = a.querySelector("circle"), x = +c.getAttribute("cx"), y = +c.getAttribute("cy");
      if (x < view.x || x > view.x + view.w || y < view.y || y > view.y + view.h) centre(a);
    });
    frame.addEventListener("wheel", function (e) {
      e.preventDefault();
      var r = svg.getBoundingClientRect();
      zoom(e.deltaY > 0 ? 1.2 : 1 / 1.2, view.x + (e.clientX - r.left) / r.width * view.w,
           view.y + (e.clientY - r.top) / r.height * view.h);
    }, { passive: false });
    var drag = null;
    frame.addEventListener("pointerdown", function (e) {
      if (e.target.closest("a")) return;  // a click on a dot follows its link
      drag = { x: e.clientX, y: e.clientY };
      frame.setPointerCapture(e.pointerId);
    });
    frame.addEventListener("pointermove", function (e) {
      if (!drag) return;
      var r = svg.getBoundingClientRect();
      view.x -= (e.clientX - drag.x) / r.width * view.w;
      view.y -= (e.clientY - drag.y) / r.height * view.h;
      drag = { x: e.clientX, y: e.clientY };
      apply();
    });
    frame.addEventListener("pointerup", function () { drag = null; });
    apply();
    box.setAttribute("data-ready", "");
  }

  function mount() {
    document.querySelectorAll(".termlab-map[data-src]:not([data-loading])").forEach(function (box) {
      box.setAttribute("data-loading", "");
      fetch(box.getAttribute("data-src")).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      }).then(function (text) {
        var frame = el("div", { class: "termlab-map-frame", tabindex: "0", role: "group",
                                "aria-label": "Concept map: arrow keys move, + and - zoom, Tab visits the terms" });
        frame.innerHTML = text;  // the build's own file (names escaped there); the HTML parser is fastest
        var svg = frame.querySelector("svg");
        if (!svg) throw new Error("not an SVG");
        box.textContent = "";
        box.appendChild(frame);
        setup(box, svg);
      }).catch(function () { box.removeAttribute("data-loading"); });  // the link stays
    });
  }

  if (window.document$) window.document$.subscribe(mount);
  else document.addEventListener("DOMContentLoaded", mount);
})();
