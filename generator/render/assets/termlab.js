/* termlab hover previews: name and summary of a linked term, on hover, focus and tap.
 * The data is fetched lazily: one small shard (previews/<nn>.json) per hovered term's shard. */
(function () {
  "use strict";
  var indexes = {};          // index URL -> Promise<{id: term}>
  var tip = null, current = null, hideTimer = null;

  function siteBase() {
    var el = document.getElementById("__config");
    var base = ".";
    try { if (el) base = JSON.parse(el.textContent).base || "."; } catch (e) { /* keep "." */ }
    return new URL(base.replace(/\/?$/, "/"), location.href);
  }
  // Must match generator/publish/previews.py: FNV-1a of the (ASCII) id, modulo 64.
  function shard(id) {
    var h = 0x811c9dc5;
    for (var i = 0; i < id.length; i++) {
      h ^= id.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    var n = h % 64;
    return (n < 16 ? "0" : "") + n.toString(16);
  }
  function shardUrl(link, id) {
    var explicit = link.getAttribute("data-termlab-index");  // another site's terms.json
    var base = explicit ? new URL(".", new URL(explicit, location.href)) : siteBase();
    return new URL("previews/" + shard(id) + ".json", base).href;
  }
  function load(url) {
    if (!indexes[url]) {
      indexes[url] = fetch(url).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      }).catch(function () { return {}; });
    }
    return indexes[url];
  }
  function element() {
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "termlab-preview";
      tip.id = "termlab-preview";
      tip.setAttribute("role", "tooltip");
      tip.hidden = true;
      tip.addEventListener("mouseenter", function () { clearTimeout(hideTimer); });
      tip.addEventListener("mouseleave", scheduleHide);
      document.body.appendChild(tip);
    }
    return tip;
  }
  function place(link) {
    var r = link.getBoundingClientRect(), t = element();
    var width = Math.min(360, document.documentElement.clientWidth - 16);
    t.style.maxWidth = width + "px";
    var left = Math.max(8, Math.min(r.left + window.scrollX, window.scrollX +
                                    document.documentElement.clientWidth - width - 8));
    t.style.left = left + "px";
    t.style.top = (r.bottom + window.scrollY + 6) + "px";
  }
  function show(link) {
    var id = link.getAttribute("data-term");
    if (!id) return;
    clearTimeout(hideTimer);
    current = link;
    load(shardUrl(link, id)).then(function (terms) {
      var term = terms[id];
      if (!term || current !== link) return;
      var t = element();
      t.textContent = "";
      var name = document.createElement("strong");
      name.textContent = term.name;
      var category = document.createElement("span");
      category.className = "termlab-preview__category";
      category.textContent = term.category || "";
      var summary = document.createElement("p");
      summary.textContent = term.summary;
      t.appendChild(name); t.appendChild(category); t.appendChild(summary);
      t.hidden = false;
      link.setAttribute("aria-describedby", t.id);
      place(link);
    });
  }
  function hide() {
    if (tip) tip.hidden = true;
    if (current) current.removeAttribute("aria-describedby");
    current = null;
  }
  function scheduleHide() { clearTimeout(hideTimer); hideTimer = setTimeout(hide, 150); }
  function termLink(target) {
    return target && target.closest ? target.closest("a.termlab-term[data-term]") : null;
  }
  document.addEventListener("mouseover", function (e) { var l = termLink(e.target); if (l) show(l); });
  document.addEventListener("mouseout", function (e) { if (termLink(e.target)) scheduleHide(); });
  document.addEventListener("focusin", function (e) { var l = termLink(e.target); if (l) show(l); });
  document.addEventListener("focusout", function (e) { if (termLink(e.target)) scheduleHide(); });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") hide(); });
  // Touch: the first tap on a term link previews it, a second tap follows the link.
  document.addEventListener("click", function (e) {
    var l = termLink(e.target);
    if (!l || !window.matchMedia("(hover: none)").matches) return;
    if (current !== l || !tip || tip.hidden) { e.preventDefault(); show(l); }
  }, true);
  document.addEventListener("touchstart", function (e) {
    if (tip && !tip.hidden && !termLink(e.target) && !tip.contains(e.target)) hide();
  }, { passive: true });
})();

/* search: Material's search (lunr) finds nothing for a query one letter off ("overfiting") and
 * shows a term's summary only when it holds the query. From search/names.json (name, aliases,
 * page, summary of each term; fetched when the search box is first used) this adds a
 * "Did you mean" line of links above the results (reached with the arrow keys, like the
 * results) and the summary under each term page's title in the results. */
(function () {
  "use strict";
  var names = null;
  function base() {
    var el = document.getElementById("__config"), b = ".";
    try { if (el) b = JSON.parse(el.textContent).base || "."; } catch (e) { /* keep "." */ }
    return new URL(b.replace(/\/?$/, "/"), location.href);
  }
  function load() {
    if (!names) {
      names = fetch(new URL("search/names.json", base()).href)
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (d) { return d.terms || []; })
        .catch(function () { return []; });
    }
    return names;
  }
  function norm(s) { return (s || "").normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim(); }
  // Optimal string alignment distance, stopping early once it exceeds 1.
  function within1(a, b) {
    if (Math.abs(a.length - b.length) > 1) return false;
    var prev2 = null, prev = [], i, j;
    for (j = 0; j <= b.length; j++) prev.push(j);
    for (i = 1; i <= a.length; i++) {
      var cur = [i], best = i;
      for (j = 1; j <= b.length; j++) {
        var cost = a[i - 1] === b[j - 1] ? 0 : 1;
        var v = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
        if (prev2 && i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, prev2[j - 2] + 1);
        cur.push(v); if (v < best) best = v;
      }
      if (best > 1) return false;
      prev2 = prev; prev = cur;
    }
    return prev[b.length] <= 1;
  }
  // Terms whose name or an alias is one edit from the query (or from one of its words).
  function suggest(terms, query) {
    var q = norm(query);
    if (q.length < 4) return [];
    var out = [];
    terms.forEach(function (t) {
      var labels = [t.name].concat(t.aliases || []).map(norm), hit = false, exact = false;
      labels.forEach(function (label) {
        if (label === q || label.indexOf(q) === 0) exact = true;
        else if (within1(q, label)) hit = true;
        else label.split(" ").forEach(function (w) {
          q.split(" ").forEach(function (qw) {
            if (qw.length >= 5 && w.length >= 5 && qw !== w && w.indexOf(qw) !== 0 && within1(qw, w)) hit = true;
          });
        });
      });
      if (hit && !exact) out.push(t);
    });
    return out.slice(0, 3);
  }
  function results() { return document.querySelector('[data-md-component="search-result"]'); }
  function showSuggestions(query) {
    load().then(function (terms) {
      var panel = results();
      if (!panel) return;
      var old = panel.querySelector(".termlab-didyoumean");
      if (old) old.remove();
      var found = suggest(terms, query);
      if (!found.length) return;
      var box = document.createElement("div");
      box.className = "termlab-didyoumean";
      box.setAttribute("role", "status");
      box.appendChild(document.createTextNode("Did you mean: "));
      found.forEach(function (t, k) {
        if (k) box.appendChild(document.createTextNode(", "));
        var a = document.createElement("a");
        a.href = new URL(t.url, base()).href;
        a.textContent = t.name;
        box.appendChild(a);
      });
      var meta = panel.querySelector(".md-search-result__meta");
      if (meta && meta.nextSibling) panel.insertBefore(box, meta.nextSibling); else panel.prepend(box);
    });
  }
  // Under each term page's title in the results, its summary (unless Material shows it already).
  function addSummaries() {
    load().then(function (terms) {
      var byUrl = {};
      terms.forEach(function (t) { byUrl[new URL(t.url, base()).pathname] = t; });
      document.querySelectorAll(".md-search-result__item > .md-search-result__link:first-child").forEach(function (link) {
        var url = new URL(link.href), article = link.querySelector("article"), term = byUrl[url.pathname];
        if (!term || url.hash || !article || article.querySelector(".termlab-search-summary")) return;
        if (norm(article.textContent).indexOf(norm(term.summary).slice(0, 60)) !== -1) return;
        var p = document.createElement("p");
        p.className = "termlab-search-summary";
        p.textContent = term.summary;
        var title = article.querySelector("h1, h2");
        if (title && title.nextSibling) article.insertBefore(p, title.nextSibling); else article.appendChild(p);
      });
    });
  }
  var timer = null;
  document.addEventListener("input", function (e) {
    if (!e.target.matches || !e.target.matches(".md-search__input")) return;
    clearTimeout(timer);
    var value = e.target.value;
    timer = setTimeout(function () { showSuggestions(value); }, 120);
  });
  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches(".md-search__input")) load();
  });
  function watch() {
    var list = document.querySelector(".md-search-result__list");
    if (!list || list.termlabWatched) return;
    list.termlabWatched = true;
    new MutationObserver(addSummaries).observe(list, { childList: true });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch); else watch();
  if (window.document$ && window.document$.subscribe) window.document$.subscribe(watch);
})();

/* termlab accessibility: Material's instant-navigation progress bar gets a name, and a box that
 * scrolls sideways (a code block, Material's table wrapper) gets a tab stop so a keyboard can
 * scroll it. Material gives code blocks one only where the device can hover, and takes it off
 * again on resize: termlab puts it back whenever the box scrolls. */
(function () {
  "use strict";
  var SCROLLERS = ".md-typeset pre > code, .md-typeset .md-typeset__scrollwrap";
  function reachable(box) {
    if (box.scrollWidth <= box.clientWidth || box.hasAttribute("tabindex")) return;
    box.setAttribute("tabindex", "0");
    if (box.classList.contains("md-typeset__scrollwrap") && !box.hasAttribute("role")) {
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", "Table");
    }
  }
  var sizes = window.ResizeObserver && new ResizeObserver(function (entries) {
    entries.forEach(function (e) { reachable(e.target); });
  });
  var removals = window.MutationObserver && new MutationObserver(function (records) {
    records.forEach(function (r) { reachable(r.target); });
  });
  function setUp() {
    var bar = document.querySelector('[data-md-component="progress"][role="progressbar"]');
    if (bar && !bar.hasAttribute("aria-label")) bar.setAttribute("aria-label", "Loading page");
    document.querySelectorAll(SCROLLERS).forEach(function (box) {
      if (sizes) sizes.observe(box);
      if (removals) removals.observe(box, { attributes: true, attributeFilter: ["tabindex"] });
      reachable(box);
    });
  }
  // Material's document$ emits for the first page and after each instant navigation.
  if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(setUp);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();

/* termlab on a phone: the sections that list other pages (connected terms, references; headings
 * marked .termlab-phonefold) start folded under their heading, which becomes a disclosure button.
 * A link to the section (the page's contents, a #hash) or the browser's find-in-page opens it
 * (hidden="until-found"); without script, or wider than a phone, everything stays open. */
(function () {
  "use strict";
  var PHONE = window.matchMedia("(max-width: 44.9375em)");
  var folds = [];
  function set(fold, open) {
    fold.button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) fold.body.removeAttribute("hidden"); else fold.body.setAttribute("hidden", "until-found");
  }
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    folds.forEach(function (f) { if (id && (f.heading.id === id || f.body.querySelector("[id='" + CSS.escape(id) + "']"))) set(f, true); });
  }
  function make(heading) {
    var body = document.createElement("div");
    body.id = heading.id + "-section";
    body.className = "termlab-foldbody";
    var next = heading.nextElementSibling;
    while (next && next.tagName !== "H2" && !next.matches("nav.termlab-pathnav")) {
      var after = next.nextElementSibling;
      body.appendChild(next);
      next = after;
    }
    heading.after(body);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "termlab-fold";
    button.setAttribute("aria-controls", body.id);
    Array.prototype.slice.call(heading.childNodes).forEach(function (n) {
      if (!(n.nodeType === 1 && n.classList.contains("headerlink"))) button.appendChild(n);
    });
    heading.insertBefore(button, heading.firstChild);
    var fold = { heading: heading, body: body, button: button };
    button.addEventListener("click", function () { set(fold, button.getAttribute("aria-expanded") !== "true"); });
    body.addEventListener("beforematch", function () { set(fold, true); });
    return fold;
  }
  function setUp() {
    folds = [];
    if (!PHONE.matches) return;
    document.querySelectorAll(".md-typeset h2.termlab-phonefold[id]").forEach(function (h) {
      var fold = make(h);
      set(fold, false);
      folds.push(fold);
    });
    openTarget();
  }
  PHONE.addEventListener("change", function (e) {
    if (!e.matches) folds.forEach(function (f) { set(f, true); });
  });
  window.addEventListener("hashchange", openTarget);
  if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(setUp);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
