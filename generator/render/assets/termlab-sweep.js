/* Figures with a slider (demo.sweep): the build drew one frame per value of a swept parameter;
   moving the slider (mouse, touch, arrow keys, Home/End) swaps the figure's light and dark
   images, its alt text and the numbers under it. No server, no fetch but the frame images,
   which load when the reader first reaches for the slider. Without script the page shows the
   default frame and its numbers. */
(function () {
  "use strict";

  function dark() {
    var body = document.body;
    return body && body.getAttribute("data-md-color-scheme") === "slate";
  }

  function setUp(box) {
    if (box.dataset.ready) return;
    box.dataset.ready = "1";
    var figure = box.closest("figure") || box.parentNode;
    var input = box.querySelector("input[type=range]");
    var output = box.querySelector("output");
    var frames = Array.prototype.slice.call(box.querySelectorAll(".termlab-sweep-frames li"));
    var numbers = box.querySelectorAll("[data-n]");
    var light = figure.querySelector('img[src*="#only-light"]');
    var night = figure.querySelector('img[src*="#only-dark"]');
    var label = box.querySelector("label").textContent;
    if (!input || !frames.length) return;
    var loaded = false;

    function preload() {  // the frames of the scheme on screen, once
      if (loaded) return;
      loaded = true;
      var key = dark() ? "dark" : "light";
      frames.forEach(function (li) { new Image().src = li.dataset[key]; });
    }

    function show(k) {
      var li = frames[k];
      if (!li) return;
      if (light) { light.src = li.dataset.light + "#only-light"; light.alt = li.dataset.alt; }
      if (night) { night.src = li.dataset.dark + "#only-dark"; night.alt = li.dataset.alt; }
      output.textContent = li.dataset.value;
      input.setAttribute("aria-valuetext", label + " " + li.dataset.value);
      numbers.forEach(function (span) { span.textContent = li.dataset["n" + span.dataset.n]; });
    }

    input.addEventListener("input", function () { preload(); show(Number(input.value)); });
    ["focus", "pointerdown", "touchstart"].forEach(function (name) {
      input.addEventListener(name, preload, { passive: true });
    });
    input.closest(".termlab-sweep-control").hidden = false;
  }

  function mount() {
    document.querySelectorAll(".termlab-sweep").forEach(setUp);
  }

  if (window.document$) window.document$.subscribe(mount);
  else document.addEventListener("DOMContentLoaded", mount);
})();
