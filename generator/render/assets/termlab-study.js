/* Study progress, kept in this browser only (localStorage; nothing leaves the page).
   - A term page's "Test yourself" becomes a scored self-test: open a question, think, read the
     answer, then mark yourself "I knew it" or "Not yet"; the score is shown and kept.
   - Visiting a term page marks it read; marking every question marks it tested; the learning
     path shows both beside each term. Without JavaScript the questions stay plain foldable boxes. */
(function () {
  "use strict";
  var PREFIX = "termlab:";

  function load(key, fallback) {
    try { return JSON.parse(localStorage.getItem(PREFIX + key)) || fallback; } catch (e) { return fallback; }
  }
  function save(key, value) {
    try { localStorage.setItem(PREFIX + key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function termId() {
    var link = document.querySelector("link[rel=canonical]");
    var quiz = document.querySelector(".termlab-quiz[data-term]");
    if (quiz) return quiz.getAttribute("data-term");
    var m = /\/terms\/([a-z0-9-]+)\/?(index\.html)?$/.exec((link && link.href) || location.pathname);
    return m ? m[1] : null;
  }

  function quiz(box) {
    var id = box.getAttribute("data-term");
    var questions = box.querySelectorAll("details");
    var marks = load("quiz:" + id, {});
    var score = document.createElement("p");
    score.className = "termlab-quiz-score";
    score.setAttribute("role", "status");
    var reset = document.createElement("button");
    reset.type = "button";
    reset.className = "md-button";
    reset.textContent = "Start again";
    function update() {
      var done = Object.keys(marks).length;
      var right = Object.keys(marks).filter(function (k) { return marks[k]; }).length;
      score.textContent = done ? "Score: " + right + " of " + questions.length + " known" +
        (done < questions.length ? " (" + (questions.length - done) + " to go)" : "") : "";
      reset.hidden = !done;
      var progress = load("progress", {});
      progress[id] = Object.assign(progress[id] || {}, { tested: done === questions.length });
      save("progress", progress);
      questions.forEach(function (q, i) {
        var mark = q.querySelector(".termlab-quiz-mark");
        mark.querySelectorAll("button").forEach(function (b) {
          b.setAttribute("aria-pressed", String(i in marks && marks[i] === (b.value === "1")));
        });
      });
    }
    questions.forEach(function (q, i) {
      var mark = document.createElement("p");
      mark.className = "termlab-quiz-mark";
      [["1", "I knew it"], ["0", "Not yet"]].forEach(function (pair) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "md-button";
        b.value = pair[0];
        b.textContent = pair[1];
        b.addEventListener("click", function () { marks[i] = pair[0] === "1"; save("quiz:" + id, marks); update(); });
        mark.appendChild(b);
        mark.appendChild(document.createTextNode(" "));
      });
      q.appendChild(mark);
    });
    reset.addEventListener("click", function () { marks = {}; save("quiz:" + id, marks); update(); });
    box.appendChild(score);
    box.appendChild(reset);
    update();
  }

  function path() {
    var progress = load("progress", {});
    document.querySelectorAll(".md-content ol li > a.termlab-term[data-term]:first-child").forEach(function (a) {
      var p = progress[a.getAttribute("data-term")];
      if (!p || !(p.read || p.tested) || a.parentNode.querySelector(".termlab-progress")) return;
      var tick = document.createElement("span");
      tick.className = "termlab-progress";
      tick.textContent = p.tested ? "✓ read · tested" : "✓ read";
      a.after(" ", tick);
    });
  }

  /* Flashcards from terms.json: the whole glossary or one category (?category=<id>); a card
     shows a term's name, "Show the meaning" turns it; arrows or buttons move through the deck. */
  function flashcards(box) {
    var url = box.getAttribute("data-terms");
    fetch(url).then(function (r) { return r.json(); }).then(function (index) {
      var all = index.terms;
      var names = {};
      all.forEach(function (t) { names[t.category.id] = t.category.name; });
      var wanted = new URLSearchParams(location.search).get("category");
      box.innerHTML = "";
      var label = document.createElement("label");
      label.textContent = "Deck ";
      var select = document.createElement("select");
      [["", "Every term"]].concat(Object.keys(names).sort().map(function (c) { return [c, names[c]]; }))
        .forEach(function (pair) {
          var o = document.createElement("option");
          o.value = pair[0];
          o.textContent = pair[1];
          select.appendChild(o);
        });
      select.value = wanted && names[wanted] ? wanted : "";
      label.appendChild(select);
      var card = document.createElement("div");
      card.className = "termlab-card";
      card.setAttribute("aria-live", "polite");
      var front = document.createElement("p");
      front.className = "termlab-card-front";
      var back = document.createElement("p");
      back.className = "termlab-card-back";
      card.append(front, back);
      var counter = document.createElement("p");
      counter.className = "termlab-card-count";
      var buttons = document.createElement("p");
      var deck = [], at = 0;
      function button(text, act) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "md-button";
        b.textContent = text;
        b.addEventListener("click", act);
        buttons.append(b, " ");
        return b;
      }
      var prev = button("Previous", function () { show(at - 1); });
      var flip = button("Show the meaning", function () { back.hidden = !back.hidden; flipLabel(); });
      var next = button("Next", function () { show(at + 1); });
      function flipLabel() { flip.textContent = back.hidden ? "Show the meaning" : "Hide the meaning"; }
      function show(k) {
        at = (k + deck.length) % deck.length;
        var t = deck[at];
        front.textContent = t.name;
        back.textContent = t.summary;
        back.hidden = true;
        flipLabel();
        counter.textContent = "Card " + (at + 1) + " of " + deck.length;
      }
      function choose() {
        deck = all.filter(function (t) { return !select.value || t.category.id === select.value; });
        show(0);
      }
      select.addEventListener("change", choose);
      box.addEventListener("keydown", function (e) {
        if (e.target === select) return;
        if (e.key === "ArrowRight") { show(at + 1); e.preventDefault(); }
        if (e.key === "ArrowLeft") { show(at - 1); e.preventDefault(); }
      });
      box.append(label, card, counter, buttons);
      prev.setAttribute("aria-label", "Previous card");
      next.setAttribute("aria-label", "Next card");
      choose();
    });
  }

  function mount() {
    var id = termId();
    if (id && document.querySelector("article .termlab-lead") && /\/terms\//.test(location.pathname)) {
      var progress = load("progress", {});
      progress[id] = Object.assign(progress[id] || {}, { read: true });
      save("progress", progress);
    }
    document.querySelectorAll(".termlab-quiz[data-term]:not([data-ready])").forEach(function (box) {
      box.setAttribute("data-ready", "");
      quiz(box);
    });
    if (document.querySelector(".termlab-path-page")) path();
    document.querySelectorAll(".termlab-flashcards:not([data-ready])").forEach(function (box) {
      box.setAttribute("data-ready", "");
      flashcards(box);
    });
  }

  if (window.document$) window.document$.subscribe(mount);
  else document.addEventListener("DOMContentLoaded", mount);
})();
