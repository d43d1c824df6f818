"""The reports as a browser shows them: two reports built from the fixture run, rendered by
a headless Chromium to PNG and to a DOM; the pages are not blank, every image is an embedded
``data:`` URI that decodes, and every local link (index, reports, the run's data) exists."""

from __future__ import annotations

import base64
import binascii
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from virtbench import report

DATA = Path(__file__).parent / "data"
CHROMIUM = Path("/usr/bin/chromium")
PAGES = ("index.html", "01_startup.html")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="/usr/bin/chromium is absent (Debian's chromium; `make setup` "
                              "installs it as root)"),
]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        elif tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def built(fixture_reports) -> Path:
    """The reports of the fixture run (built once per session, see conftest.py)."""
    results, out = fixture_reports
    status = {r.name: r.status for r in results}
    assert status["00_overview"] == status["01_startup"] == "ok", [r.error for r in results]
    return out


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_content(built, tmp_path, page):
    from PIL import Image

    png = tmp_path / "page.png"
    done = _chromium(tmp_path, "--window-size=1280,2000", f"--screenshot={png}",
                     (built / page).as_uri())
    assert png.exists() and png.stat().st_size > 0, done.stderr[-2000:]
    with Image.open(png) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 16, f"{page} renders almost blank"

    dom = _chromium(tmp_path, "--dump-dom", (built / page).as_uri()).stdout
    assert "virtbench" in dom and "fixture_run" in dom
    assert "<script" not in dom


@pytest.mark.parametrize("page", PAGES)
def test_images_are_embedded_and_decode(built, page):
    parser = _Links()
    parser.feed((built / page).read_text())
    assert parser.images, f"{page} has no image"
    for src in parser.images:
        assert src.startswith("data:image/"), src[:80]
        header, _, payload = src.partition(",")
        assert header.endswith(";base64")
        try:
            raw = base64.b64decode(payload, validate=True)
        except binascii.Error as exc:
            pytest.fail(f"{page}: an image does not decode: {exc}")
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" or raw[:2] == b"\xff\xd8", header


@pytest.mark.parametrize("page", PAGES)
def test_local_links_and_data_exist(built, page):
    parser = _Links()
    parser.feed((built / page).read_text())
    data = [h for h in parser.hrefs if h.startswith(f"{report.DATA_DIR}/")]
    assert {Path(h).name for h in data} == {"results.csv", "host.json"}
    assert all(h.startswith(f"{report.DATA_DIR}/fixture_run/") for h in data)
    for href in parser.hrefs:
        url = urlparse(href)
        if url.scheme or href.startswith("#"):
            continue
        target = built / unquote(url.path)
        assert target.is_file(), f"{page} links {href}, which does not exist"
    assert (built / "data" / "fixture_run" / "results.csv").read_bytes() == (
        DATA / "fixture_run" / "results.csv").read_bytes()



_PROBE = """<script>
window.addEventListener("load", () => {
  const cells = [...document.querySelectorAll("main td")].filter(c => c.textContent.trim());
  const align = f => [...new Set(cells.filter(f).map(c => getComputedStyle(c).textAlign))];
  const main = [...document.querySelector("main").querySelectorAll("img, table")];
  document.body.setAttribute("data-probe", JSON.stringify({
    number: align(c => c.classList.contains("vb-num")),
    text: align(c => !c.classList.contains("vb-num")),
    first: main.slice(0, 2).map(e => e.tagName.toLowerCase()),
    broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
    width: window.innerWidth,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    alts: [...document.querySelectorAll("main img")].map(i => i.getAttribute("alt") || ""),
    order: [...document.querySelectorAll("main img, main h2, main .celltag_headline")]
      .map(e => e.tagName === "H2" ? e.textContent.replace("\u00b6", "").trim()
                : e.tagName === "IMG" ? "img" : "headline"),
    wider: [...document.querySelectorAll("main img")].filter(
      i => i.getBoundingClientRect().right > window.innerWidth + 1).length,
  }));
});
</script>"""


def _probe(built: Path, tmp: Path, page: str, width: int) -> dict:
    """What a browser computes for ``page`` in a window ``width`` px wide: the text-align of
    number and text cells, the first two figures or tables, broken images, sideways overflow."""
    import json
    import re

    copy = built / f"probe-{width}-{page}"
    copy.write_text((built / page).read_text().replace("</body>", _PROBE + "</body>"))
    dom = _chromium(tmp, f"--window-size={width},900", "--virtual-time-budget=10000",
                    "--dump-dom", copy.as_uri()).stdout
    copy.unlink()
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.parametrize("width", (1280, 390))
def test_report_layout_as_the_browser_computes_it(built, tmp_path, width):
    probe = _probe(built, tmp_path, "01_startup.html", width)
    assert probe["number"] == ["right"] and probe["text"] == ["left"], probe
    assert probe["first"] == ["img", "img"], probe  # the finding, then the verdict counts
    assert probe["broken"] == 0
    # headless Chromium's narrowest window is 500 px: still a phone for the stylesheet
    assert probe["width"] == max(width, 500) and probe["overflow"] <= 0, probe
    assert probe["wider"] == 0, probe  # every figure scales to the page


@pytest.mark.parametrize("page", ("00_overview.html", "01_startup.html"))
def test_report_leads_with_its_finding(built, tmp_path, page):
    """The headline sentence, then the finding figure, then the verdict counts (issue 24);
    the overview's finding is its verdict matrix."""
    order = _probe(built, tmp_path, page, 1280)["order"]
    assert order[0] == "headline", order
    verdicts = order.index("Verdicts at a glance")
    assert "img" in order[:verdicts], order  # a figure before the counts
    assert order[verdicts + 1] == "img", order


@pytest.mark.parametrize("page", PAGES)
def test_every_image_has_alt_text_from_its_figure(built, tmp_path, page):
    alts = _probe(built, tmp_path, page, 1280)["alts"]
    assert alts, page
    for alt in alts:
        assert alt.strip() and "No description" not in alt, alts
    if page != "index.html":  # a report's figures are described by their own titles
        assert any("claimed vs measured" in alt for alt in alts), alts


@pytest.mark.parametrize("width", (1280, 390))
def test_screenshot_at_desktop_and_phone_width_is_not_blank(built, tmp_path, width):
    from PIL import Image

    png = tmp_path / f"page-{width}.png"
    _chromium(tmp_path, f"--window-size={width},1600", f"--screenshot={png}",
              (built / "01_startup.html").as_uri())
    with Image.open(png) as img:
        assert img.width == width
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 16
