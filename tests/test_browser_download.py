"""The real site's dropout demo, downloaded in a browser as a reader would (click the link,
save, unzip into an empty folder), runs with `python dropout.py` and reproduces the page."""

from __future__ import annotations

import io
import json
import zipfile

from test_download import run_download


def test_the_downloaded_demo_runs_in_an_empty_folder(browser, base_url, real_site, tmp_path):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    page = context.new_page()
    page.goto(base_url + "terms/dropout/")
    link = page.locator("a[download='dropout.zip']")
    assert not link.is_visible()  # folded in "Run it yourself" until the reader opens it
    page.get_by_text("Run it yourself", exact=True).click()
    assert "unzip it" in link.locator("xpath=..").inner_text()
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "dropout.zip"
    saved = tmp_path / "dropout.zip"
    download.save_as(saved)
    context.close()
    data = saved.read_bytes()
    assert data == (real_site / "terms/dropout/dropout.zip").read_bytes()
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None

    done = run_download(data, tmp_path / "empty", "dropout")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "empty/dropout/output"
    ran = json.loads((out / "outputs.json").read_text())
    assert ran["claims"] and all(c["holds"] for c in ran["claims"])
    for claim in ran["claims"]:
        assert f"[held] {claim['kind']}: {claim['statement']}" in done.stdout
    # the figures (light and dark) and the models are the page's own, byte for byte
    files = [f for fig in ran["figures"] for f in (fig["light"], fig["dark"])] + ran["models"]
    assert len(ran["figures"]) >= 2 and ran["models"]
    for name in files:
        assert (out / name).read_bytes() == (real_site / "terms/dropout" / name).read_bytes(), name
