"""Term pages a learner reads: one connected-terms block, named learning-path stages with
previous/next, titles, the home page's start line, and no dev-server URL when site_url is unset.
Tiny sites in tmp_path; assertions on parsed HTML."""

from __future__ import annotations

import html.parser
import re
from dataclasses import dataclass, field

import pytest

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list = field(default_factory=list)  # Nodes and strings

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def text(self) -> str:
        return " ".join("".join(c if isinstance(c, str) else " " + c.text() + " "
                                for c in self.children).split())

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for c in self.children:
            if isinstance(c, Node):
                if (tag is None or c.tag == tag) and (cls is None or cls in c.classes):
                    found.append(c)
                found.extend(c.all(tag, cls))
        return found

    def one(self, tag: str | None = None, cls: str | None = None) -> Node:
        found = self.all(tag, cls)
        assert len(found) == 1, (tag, cls, len(found))
        return found[0]


class _Tree(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(text: str) -> Node:
    tree = _Tree()
    tree.feed(text)
    return tree.root


def connected(page: Node) -> dict[str, str]:
    """The connected-terms block: term id -> its relation labels, in order (ids once each)."""
    items = page.one("div", "termlab-connected").all("li")
    ids = [li.all("a", "termlab-term")[0].attrs["data-term"] for li in items]
    assert len(ids) == len(set(ids)), f"a term listed twice: {ids}"
    return {tid: li.one("span", "termlab-relation").text() for tid, li in zip(ids, items, strict=True)}


# --- the short summary helper ---------------------------------------------------------------

def test_short_summary_takes_the_first_sentence_and_cuts_at_a_word():
    from generator.text.plain import first_sentence, short_summary

    assert first_sentence("Drops units, e.g. half of them. Then more.") == "Drops units, e.g. half of them."
    assert first_sentence("With p = 0.5 units dropped. Next.") == "With p = 0.5 units dropped."
    assert first_sentence("As Vaswani et al. showed (2017). More.") == "As Vaswani et al. showed (2017)."
    assert first_sentence("No full stop") == "No full stop"
    # Markdown, links and math become plain text
    assert short_summary("Uses [[loss function|the loss]] and $\\lambda$. More here.") == \
        "Uses the loss and λ."
    long = " ".join(f"w{i}" for i in range(40)) + "."
    cut = short_summary(long)
    assert cut.endswith("…") and len(cut[:-1].split()) == 25 and cut.split()[-1] == "w24…"
    # never ends on a word that needs the next one, nor on punctuation before the ellipsis
    text = " ".join(["word"] * 23) + " of the rest, and so on and on."
    assert short_summary(text) == " ".join(["word"] * 23) + "…"
    assert short_summary(long, max_words=3) == "w0 w1 w2…"
    assert short_summary("") == ""


# --- the connected-terms block --------------------------------------------------------------

@pytest.fixture
def linked(project):
    project.term("regularization", "Regularization", summary="Restricting learning. It helps.")
    project.term("overfitting", "Overfitting", body="Cured by [[dropout]] sometimes.",
                 summary="Fitting noise " + "and more " * 20 + "so on. Second sentence here.")
    project.term("l2", "L2 penalty", summary="Squared weights.")
    project.term("batchnorm", "Batch norm", category="deep-learning", summary="Normalizes.")
    project.term("adam", "Adam", category="deep-learning", summary="Adaptive steps.")
    project.term("dropout", "Dropout", category="deep-learning", prerequisites=["regularization"],
                 related=["regularization", "overfitting", "batchnorm"],
                 see_also=["overfitting", "l2"], summary="Zeroes units.",
                 body="See [[overfitting]] and [[L2 penalty]] again.")
    project.build()
    return project


def test_connected_block_lists_every_term_once_with_all_its_relations(linked):
    page = parse(linked.html("terms/dropout/index.html"))
    headings = [h.text() for h in page.all("h2")]
    assert "Connected terms" in headings
    for gone in ("Related terms", "See also", "Referenced by", "Next up", "More in Deep Learning"):
        assert not any(h.startswith(gone) for h in headings), gone
    assert connected(page) == {
        "regularization": "builds on · related",
        "overfitting": "related · see also · used by",
        "batchnorm": "related · same category",
        "l2": "see also",
        "adam": "same category",
    }
    items = {li.all("a", "termlab-term")[0].attrs["data-term"]: li
             for li in page.one("div", "termlab-connected").all("li")}
    short = items["overfitting"].one("span", "termlab-short").text()
    assert short.startswith("Fitting noise") and short.endswith("…") and "Second" not in short
    assert len(short.split()) <= 25
    assert items["regularization"].one("span", "termlab-short").text() == "Restricting learning."


def test_no_term_appears_twice_in_any_connected_block(linked):
    for tid in ("regularization", "overfitting", "l2", "batchnorm", "adam", "dropout"):
        listed = connected(parse(linked.html(f"terms/{tid}/index.html")))
        assert tid not in listed
    # overfitting's prose links to dropout, but it is dropout that names overfitting
    assert connected(parse(linked.html("terms/overfitting/index.html")))["dropout"] == "used by"


# --- the learning path ----------------------------------------------------------------------

PATH = """\
basics: {name: The basics, order: 1, description: Where everyone starts.}
nets: {name: Neural nets, order: 2}
"""


@pytest.fixture
def staged(project):
    project.write("glossary/_path.yaml", PATH)
    # Deep-learning term placed in stage 1 by its entry; a term without stage goes after its
    # prerequisites; a machine-learning term placed in stage 2.
    project.term("loss", "Loss", stage="basics", category="deep-learning")
    project.term("overfitting", "Overfitting", stage="basics", prerequisites=["loss"])
    project.term("dropout", "Dropout", stage="nets", prerequisites=["overfitting"])
    project.term("sigmoid", "Sigmoid", stage="nets")
    project.term("ridge", "Ridge", prerequisites=["dropout"])
    project.build()
    return project


def test_every_term_page_says_its_stage_and_links_along_the_path(staged):
    path = parse(staged.html("path/index.html"))
    stages = [h.text().rstrip("¶").strip() for h in path.all("h2")]
    assert stages == ["Stage 1: The basics", "Stage 2: Neural nets"]
    order = [a.attrs["data-term"] for a in path.all("a", "termlab-term")
             if a.attrs.get("data-term") and a.tag == "a" and a.attrs["data-term"]]
    order = list(dict.fromkeys(order))  # "builds on" links repeat earlier terms
    assert order == ["loss", "overfitting", "sigmoid", "dropout", "ridge"]
    stage_of = {"loss": (1, "The basics"), "overfitting": (1, "The basics"),
                "sigmoid": (2, "Neural nets"), "dropout": (2, "Neural nets"), "ridge": (2, "Neural nets")}
    for i, tid in enumerate(order):
        page = parse(staged.html(f"terms/{tid}/index.html"))
        k, name = stage_of[tid]
        meta = page.one("span", "termlab-meta").text()
        assert f"Stage {k} of 2: {name}" in meta, (tid, meta)
        nav = page.one("nav", "termlab-pathnav")
        prev = [a.attrs["data-term"] for s in nav.all("span", "termlab-prev") for a in s.all("a")]
        nxt = [a.attrs["data-term"] for s in nav.all("span", "termlab-next") for a in s.all("a")]
        assert prev == order[i - 1:i] if i else prev == [], (tid, prev)
        assert nxt == order[i + 1:i + 2], (tid, nxt)


def test_without_a_path_file_stages_follow_categories_then_prerequisites(project):
    from generator.render.connections import path_places

    project.term("activation", "Activation", category="deep-learning")
    project.term("loss", "Loss")
    project.term("backprop", "Backprop", category="deep-learning", prerequisites=["loss"])
    project.term("tuning", "Tuning", prerequisites=["backprop"])  # ML, but after a DL term
    g = project.load()
    assert [(s.name, s.terms) for s in g.stages] == [
        ("Machine Learning", ("loss",)),
        ("Deep Learning", ("activation", "backprop", "tuning"))]
    assert g.problems == []
    places = path_places(g)
    assert (places["backprop"].k, places["backprop"].n) == (2, 2)
    assert places["loss"].previous is None and places["tuning"].next is None


def test_stage_mistakes_are_named_with_file_and_line(project):
    project.term("loss", "Loss", stage="basiks")
    project.term("deep", "Deep", stage="basics", prerequisites=["later"])
    project.term("later", "Later", stage="nets")
    problems = project.problems()
    assert problems and all("_path.yaml declares no stages" in p for p in problems
                            if "stage" in p), problems
    project.write("glossary/_path.yaml", PATH + "odd: {name: Odd, order: x, colour: red}\n")
    problems = "\n".join(project.problems())
    assert re.search(r"glossary/loss.yaml:\d+: stage: unknown stage 'basiks' \(did you mean "
                     r"'basics'\?\); declare it in glossary/_path.yaml", problems), problems
    assert re.search(r"glossary/deep.yaml:\d+: stage: stage 'basics' comes before stage 'nets' "
                     r"of its prerequisite 'later'", problems), problems
    assert re.search(r"glossary/_path.yaml:3: .*order", problems), problems
    assert re.search(r"glossary/_path.yaml:3: .*colour", problems), problems
    line = next(p for p in project.problems() if "basiks" in p).split(":")[1]
    assert (project.glossary / "loss.yaml").read_text().splitlines()[int(line) - 1].startswith("stage:")


# --- home page, titles, site_url ------------------------------------------------------------

def test_titles_read_name_dash_site_and_home_starts_at_the_path(staged):
    def title(rel: str) -> str:
        return parse(staged.html(rel)).one("title").text()

    assert title("terms/dropout/index.html") == "Dropout – Test glossary"
    assert title("path/index.html") == "Learning path – Test glossary"
    assert title("index.html") == "Test glossary"
    home = parse(staged.html("index.html"))
    start = home.one("p", "termlab-start")
    assert start.text().startswith("Start here: Loss")
    assert [a.attrs["data-term"] for a in start.all("a", "termlab-term")] == ["loss"]
    labels = {li.all("a", "termlab-term")[0].attrs["data-term"]: li.one("span", "termlab-category").text()
              for li in home.all("li") if li.all("span", "termlab-category")}
    assert labels == {"loss": "Deep Learning", "overfitting": "Machine Learning",
                      "dropout": "Machine Learning", "sigmoid": "Machine Learning",
                      "ridge": "Machine Learning"}


def test_home_text_comes_from_site_description(project):
    project.write("mkdocs.yml", "site_name: Words\nsite_description: A <b>tiny</b> lexicon.\n"
                  "site_url: https://example.org/\ntheme: {name: material}\n"
                  f"plugins: [termlab: {{cache_dir: {project.root / '.cache'}, audit_seeds: 0}}]\n")
    project.term("loss", "Loss")
    project.build()
    lead = parse(project.html("index.html")).one("p", "termlab-lead")
    assert lead.text().startswith("A <b>tiny</b> lexicon.") and not lead.all("b")
    assert "ML glossary" not in project.html("index.html")


def test_no_dev_server_url_when_site_url_is_unset(project, caplog_mkdocs):
    project.write("mkdocs.yml", "site_name: Words\ntheme: {name: material}\n"
                  f"plugins: [search, termlab: {{cache_dir: {project.root / '.cache'}, audit_seeds: 0}}]\n")
    project.term("loss", "Loss")
    project.term("overfitting", "Overfitting", prerequisites=["loss"])
    site = project.build(strict=True)  # builds, strict, with no site_url
    for page in site.rglob("*.html"):
        tree = parse(page.read_text("utf-8"))
        assert not [link for link in tree.all("link") if link.attrs.get("rel") == "canonical"], page
        assert "127.0.0.1" not in page.read_text("utf-8"), page
    sitemap = (site / "sitemap.xml").read_text("utf-8")
    assert "127.0.0.1" not in sitemap and "<loc>" not in sitemap
    assert any("site_url is not set" in r.getMessage() for r in caplog_mkdocs.records)
    # with a site_url, canonical links and the sitemap name it
    project.write("mkdocs.yml", (project.root / "mkdocs.yml").read_text("utf-8").replace(
        "site_name: Words\n", "site_name: Words\nsite_url: https://example.org/words/\n"))
    site = project.build(strict=True)
    assert "<loc>https://example.org/words/terms/loss/</loc>" in (site / "sitemap.xml").read_text()
    canonical = [link.attrs["href"] for link in parse(project.html("terms/loss/index.html")).all("link")
                 if link.attrs.get("rel") == "canonical"]
    assert canonical == ["https://example.org/words/terms/loss/"]
