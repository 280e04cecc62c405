/* "Listen": a term page's summary and its plain-words explanation read aloud by the browser's
   own speech synthesis (no audio files). Listen / Pause / Resume on one button, Stop beside it;
   hidden where the browser cannot speak. Under Material's instant navigation this runs on each
   page it shows, and speech stops when the reader leaves the page. */
(function () {
  "use strict";
  var speech = window.speechSynthesis;

  function textOf(root) {
    if (!root) return "";
    var copy = root.cloneNode(true);  // formulas: their text form (MathML's annotation), not glyphs
    copy.querySelectorAll("math").forEach(function (m) {
      var alt = m.getAttribute("alttext") || (m.querySelector("annotation") || {}).textContent || "";
      m.replaceWith(document.createTextNode(alt));
    });
    return copy.textContent.replace(/\s+/g, " ").trim();
  }

  function mount() {
    var box = document.querySelector(".termlab-listen");
    if (speech) speech.cancel();  // a new page: whatever was being read stops
    if (!box || !speech || typeof window.SpeechSynthesisUtterance !== "function") return;
    var play = box.querySelector("[data-listen=play]");
    var stop = box.querySelector("[data-listen=stop]");
    var status = box.querySelector(".termlab-listen-status");
    var plain = document.querySelector(".tabbed-set .tabbed-block");  // "In plain words" comes first
    var text = [textOf(document.querySelector(".termlab-lead")), textOf(plain)].filter(Boolean).join(" ");
    if (!text) return;
    var state = "idle";
    function show(next, said) {
      state = next;
      play.textContent = next === "speaking" ? "Pause" : next === "paused" ? "Resume" : "Listen";
      stop.disabled = next === "idle";
      status.textContent = said;
    }
    play.addEventListener("click", function () {
      if (state === "speaking") { speech.pause(); show("paused", "Paused"); return; }
      if (state === "paused") { speech.resume(); show("speaking", "Reading"); return; }
      var utterance = new window.SpeechSynthesisUtterance(text);
      utterance.lang = document.documentElement.lang || "en";
      utterance.onend = function () { show("idle", ""); };
      speech.cancel();
      speech.speak(utterance);
      show("speaking", "Reading the summary and the plain-words explanation");
    });
    stop.addEventListener("click", function () { speech.cancel(); show("idle", "Stopped"); });
    box.hidden = false;
  }

  if (window.document$) window.document$.subscribe(mount);
  else document.addEventListener("DOMContentLoaded", mount);
})();
