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
