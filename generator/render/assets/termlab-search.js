/* search: pagefind. On the search page, Pagefind's own accessible search box (its script and
   styles load on that page only); anywhere else, "/" opens the search page, as Material's "/"
   opens its own search. Under instant navigation Material swaps pages without reloading, so
   this runs on each page it shows (document$). */
(function () {
  "use strict";
  function mount() {
    var box = document.getElementById("termlab-search");
    if (!box || box.hasAttribute("data-mounted")) return;
    box.setAttribute("data-mounted", "");
    var base = box.getAttribute("data-pagefind");
    function start() {  // baseUrl: the site's root path, so results link right under a subpath too
      new window.PagefindUI({ element: "#termlab-search", showSubResults: true, showImages: false,
                              resetStyles: false, autofocus: true, baseUrl: new URL(siteRoot()).pathname });
    }
    if (window.PagefindUI) return start();
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = base + "pagefind-ui.css";
    document.head.appendChild(css);
    var script = document.createElement("script");
    script.src = base + "pagefind-ui.js";
    script.onload = start;
    document.head.appendChild(script);
  }
  function siteRoot() {  // Material writes the site's root, relative to the page, into __config
    var config = document.getElementById("__config");
    var base = config ? JSON.parse(config.textContent).base : ".";
    return new URL(base.replace(/\/?$/, "/"), location.href).href;
  }
  function searchPage() {
    return siteRoot() + "search/";
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    if (document.getElementById("termlab-search")) return;
    event.preventDefault();
    location.href = searchPage();
  });
  if (window.document$) window.document$.subscribe(mount);
  else document.addEventListener("DOMContentLoaded", mount);
})();
