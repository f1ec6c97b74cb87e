"""The documentation site, checked in a real browser.

Builds the site from the current notebooks (`python tools/build_docs.py`), serves `site/` on 127.0.0.1, and opens every
page in headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright): no console errors, no failed request,
every image loaded, every internal link and anchor resolves, the API reference lists every exported name of every
module, and the search box finds "KL divergence". The site reads like a book at 1280 px: the chapters in the sidebar in
reading order (`READING_ORDER` of tools/build_docs.py), no code block that scrolls sideways (long lines wrap), figures
at their natural size (only narrowed to the column), module pages without their test-only cells (chapters keep their
asserted headline numbers). Screenshots go to `artifacts/docs/`.

Without Chromium, Playwright or the docs tools (the dev extra) the tests skip locally, and fail under CI (`CI` set),
where `.ci/run` installs them. A notebook that nbdev cannot process (`nbdev_docs` would fail the same way) fails the
build, and so the tests.
"""
import html.parser, importlib, importlib.util, inspect, json, os, pkgutil, re, shutil, socket, subprocess, sys, time
import urllib.error, urllib.parse, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
ARTIFACTS = ROOT / "artifacts" / "docs"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
LIB = "sparse_ae_tf"

def _build_docs():
    "tools/build_docs.py as a module (its reading order and its test-cell rule)."
    if "build_docs" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_docs", ROOT / "tools" / "build_docs.py")
        sys.modules["build_docs"] = mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return sys.modules["build_docs"]

def _unavailable(why):
    if os.environ.get("CI"): pytest.fail(f"{why}: CI must run the docs browser test (.ci/run installs chromium and the dev extra)")
    pytest.skip(why)

def pandoc_slug(text):
    "The id Quarto (pandoc) and tools/build_docs.py give a heading."
    s = re.sub(r"\s+", "-", re.sub(r"[^\w\s.-]", "", text.strip().lower()))
    return re.sub(r"^[^a-z]+", "", s) or "section"

# ---------------------------------------------------------------------------------------------------------------------
# fixtures: a fresh build, a local server, a browser

@pytest.fixture(scope="module")
def build():
    "Build the site from the notebooks as they are now; the build's summary (pages, modules, timings)."
    for mod in ("mkdocs", "material", "mdit_py_plugins", "latex2mathml"):
        if importlib.util.find_spec(mod) is None: _unavailable(f"{mod} is not installed (pip install -e '.[dev]')")
    t0 = time.time()
    r = subprocess.run([sys.executable, "tools/build_docs.py"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0, f"tools/build_docs.py failed:\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}"
    info = json.loads((ROOT / "build" / "docs" / "build_info.json").read_text())
    info["seconds"]["test_build_wall"] = round(time.time() - t0, 1)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "build_info.json").write_text(json.dumps(info, indent=1))
    print(r.stdout)
    return info

@pytest.fixture(scope="module")
def server(build):
    "`python -m http.server` on a free port of 127.0.0.1, serving site/; its base URL."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(SITE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try: urllib.request.urlopen(base, timeout=1).close(); break
            except OSError: time.sleep(0.1)
        else: pytest.fail("the local http.server did not start")
        yield base
    finally:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill()

@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    "A Chromium context with a fresh profile."
    try: from playwright.sync_api import sync_playwright
    except ImportError: _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists(): _unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
                                                   headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        try: yield ctx
        finally: ctx.close()

def site_pages():
    return sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html") if p.name != "404.html")

class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.ids = set()
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("id", "name") and v: self.ids.add(v)

def open_page(ctx, url):
    "Open `url`; the page and what went wrong while loading it (console errors, failed requests, HTTP errors)."
    page, problems = ctx.new_page(), []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load", timeout=30_000)
    page.wait_for_load_state("networkidle", timeout=15_000)
    return page, problems

_IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; setTimeout(r, 10000); })));
  return imgs.map(i => [i.getAttribute('src'), i.naturalWidth]);
}"""

# ---------------------------------------------------------------------------------------------------------------------

def test_every_notebook_has_a_page(build):
    from nbdev.doclinks import nbglob
    nbs = [Path(f).relative_to(ROOT / "nbs") for f in nbglob(ROOT / "nbs", skip_folder_re=r"(?:^[_.]|^www\$)")]
    assert nbs, "no notebooks found"
    assert len(build["pages"]) == len(nbs) + 1, f"{len(nbs)} notebooks, pages {build['pages']}"  # + api.html
    assert "index.html" in build["pages"] and "api.html" in build["pages"]
    for p in build["pages"]: assert (SITE / p).is_file(), p

_PAGE_JS = """() => ({
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
  headings: Array.from(document.querySelectorAll('h1[id],h2[id],h3[id],h4[id],h5[id],h6[id]')).map(e => e.id),
  tables: Array.from(document.querySelectorAll('table[data-module]')).map(t =>
    [t.dataset.module, Array.from(t.querySelectorAll('tr[data-name]')).map(r => r.dataset.name)]),
  nav: Array.from(document.querySelectorAll('nav.md-nav--primary a.md-nav__link[href]')).map(a => a.href),
  inputs: Array.from(document.querySelectorAll('.nb-input pre > code')).map(c => c.textContent),
  scrolling: Array.from(document.querySelectorAll('pre, pre > code')).filter(e => e.getClientRects().length &&
    e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 120)),
})"""

_FIGURES_JS = """() => Array.from(document.querySelectorAll('figure.nb-figure img')).map(i =>
  [i.getAttribute('src'), i.naturalWidth, Number(i.getAttribute('width')), i.getBoundingClientRect().width,
   i.closest('figure').getBoundingClientRect().width])"""

_SHOW_JS = """(selector) => { const e = document.querySelector(selector); if (!e) return false;
  e.scrollIntoView({block: 'center'}); return true; }"""

@pytest.fixture(scope="module")
def visits(build, server, browser):
    "Every page of the site opened once: what went wrong, its images, links, ids and API tables; screenshots taken."
    shots = {"index.html": "home", next(iter(build["modules"].values()), None): "api",
             next((p for p in build["pages"] if "/" in p), None): "chapter"}
    # viewport shots at 1280 px: a long code line wrapped, and the first figure the build found too small
    views = {"tutorials/anomaly_detection.html": ("wrapped_code", ".nb-input pre")}
    if build.get("small_figures"):
        f = build["small_figures"][0]
        views[f["page"]] = ("small_figure", f'img[src="{f["figure"]}"]')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    res = {}
    for rel in site_pages():
        page, probs = open_page(browser, server + rel)
        info = page.evaluate(_PAGE_JS)
        info["images"] = page.evaluate(_IMAGES_JS)
        info["figures"] = page.evaluate(_FIGURES_JS)
        info["problems"] = probs
        if rel in shots: page.screenshot(path=str(ARTIFACTS / f"{shots[rel]}.png"), full_page=True)
        if rel in views and page.evaluate(_SHOW_JS, views[rel][1]):
            page.wait_for_timeout(200)
            page.screenshot(path=str(ARTIFACTS / f"{views[rel][0]}.png"))
        page.close()
        res[rel] = info
    return res

def test_every_page_loads_cleanly(build, server, visits):
    assert set(build["pages"]) <= set(visits)
    problems, links, n_img = {}, set(), 0
    for rel, v in visits.items():
        probs = list(v["problems"])
        for src, width in v["images"]:
            n_img += 1
            if not width: probs.append(f"broken image: {src}")
        links |= {(rel, h) for h in v["links"] if h.startswith(server)}
        if rel == "index.html":  # the sidebar reaches every page
            nav = {h.split("#")[0] for h in v["nav"]}
            if missing := [p for p in build["pages"] if server + p not in nav]: probs.append(f"pages missing from the sidebar: {missing}")
        if probs: problems[rel] = probs
    assert n_img > 0, "no figure on the whole site"

    status, ids, bad = {}, {}, []
    for rel, href in sorted(links):
        url, _, frag = href.partition("#")
        if url not in status:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    status[url], body, html_page = r.status, r.read().decode("utf-8", "replace"), r.headers.get_content_type() == "text/html"
                p = _Ids()
                if html_page: p.feed(body)  # a figure links to its PNG
                ids[url] = p.ids
            except urllib.error.HTTPError as e: status[url] = e.code
        if status[url] != 200: bad.append(f"{rel}: {href} -> HTTP {status[url]}")
        elif frag and urllib.parse.unquote(frag) not in ids.get(url, set()): bad.append(f"{rel}: {href} -> no element with id {frag!r}")
    if bad: problems["internal links"] = bad
    assert not problems, "docs site problems:\n" + "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in problems.items())
    print(f"{len(visits)} pages, {n_img} images, {len(links)} internal links checked")

def _modules():
    pkg = importlib.import_module(LIB)
    for m in pkgutil.walk_packages(pkg.__path__, LIB + "."):
        if any(part.startswith("_") for part in m.name.split(".")): continue
        yield importlib.import_module(m.name)

def test_api_reference_lists_every_exported_name(build, visits):
    mods = list(_modules())
    assert mods
    api_tables = dict(visits["api.html"]["tables"])
    problems = []
    for mod in mods:
        names = list(getattr(mod, "__all__", []))
        if not names: problems.append(f"{mod.__name__} has no __all__"); continue
        page_rel = build["modules"].get(mod.__name__)
        if page_rel is None: problems.append(f"{mod.__name__}: no notebook page (no `#| default_exp`)"); continue
        if missing := [n for n in names if n not in api_tables.get(mod.__name__, [])]:
            problems.append(f"api.html, {mod.__name__}: missing {missing}")
        v = visits[page_rel]
        ids, headings, table = set(v["ids"]), set(v["headings"]), dict(v["tables"]).get(mod.__name__, [])
        for n in names:
            obj, a = getattr(mod, n, None), pandoc_slug(n)
            if n not in table: problems.append(f"{page_rel}: {n} missing from the exported-names table")
            if a not in ids: problems.append(f"{page_rel}: no anchor #{a} for {n}")
            documented = (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", None) == mod.__name__
            if documented and a not in headings: problems.append(f"{page_rel}: no show_doc entry (heading #{a}) for {mod.__name__}.{n}")
    assert not problems, "API reference:\n" + "\n".join(problems)

def test_search_finds_kl_divergence(build, server, browser):
    index = json.loads((SITE / "search" / "search_index.json").read_text())
    texts = [d.get("title", "") + " " + d.get("text", "") for d in index["docs"]]
    assert any("kl divergence" in re.sub(r"<[^>]+>", "", t).lower() for t in texts), "the search index has no 'KL divergence'"
    page, probs = open_page(browser, server + "index.html")
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("KL divergence", delay=20)
    page.wait_for_selector(".md-search-result__item", timeout=20_000)
    results = page.eval_on_selector_all(".md-search-result__item", "els => els.map(e => e.innerText)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search.png"))
    assert not probs, probs
    assert any(re.search(r"kl\s+divergence", r, re.I) for r in results), f"search results without 'KL divergence': {results[:5]}"
    page.close()

def test_screenshots(visits):
    "Home page, one API page and one chapter, taken while visiting, for a person to look at."
    for name in ("home", "api", "chapter", "wrapped_code"):
        out = ARTIFACTS / f"{name}.png"
        assert out.is_file() and out.stat().st_size > 10_000, out


# ---------------------------------------------------------------------------------------------------------------------
# reads like a book

# the brief's order of the first chapters (each listed chapter that exists must come in this order)
BOOK = ["sparsity_gradient", "edge_detectors", "pen_strokes", "feature_learning", "dimensionality_reduction",
        "denoising", "anomaly_detection"]

def test_chapters_in_reading_order(build, server, visits):
    bd = _build_docs()
    chapters = [p for p in build["pages"] if p.startswith("tutorials/")]
    order = build["reading_order"]
    assert sorted(order) == sorted(chapters), "every chapter once"
    stems = [Path(p).stem for p in order]
    assert stems == sorted(stems, key=bd.reading_key), stems
    listed = [s for s in BOOK if s in stems]
    assert [s for s in stems if s in BOOK] == listed and len(listed) >= 5, stems
    assert bd.reading_key("a_chapter_added_later") > max(bd.reading_key(s) for s in bd.READING_ORDER)  # it lands last
    nav = [h.split("#")[0][len(server):] for h in visits["index.html"]["nav"]]
    in_nav = [p for p in dict.fromkeys(nav) if p.startswith("tutorials/")]
    assert in_nav == order, f"sidebar order {in_nav}"
    first_api = min(i for i, p in enumerate(nav) if p == "api.html")
    assert max(nav.index(p) for p in order) < first_api, "the chapters come before the API reference"

def test_no_code_block_scrolls_sideways(visits):
    "At 1280 px every code block (cells, outputs, signatures, source pages) fits the column: long lines wrap."
    scrolling = {rel: v["scrolling"] for rel, v in visits.items() if v["scrolling"]}
    assert not scrolling, "code blocks that scroll sideways (their longest line):\n" + "\n".join(
        f"{rel}: {lines}" for rel, lines in scrolling.items())
    longest = max(len(l) for v in visits.values() for c in v["inputs"] for l in c.splitlines())
    assert longest > 100, "no long line on the site: the check above checked nothing"

# pages allowed figures below tools/build_docs.MIN_DPI (the build lists every such figure): none since interpret.py and
# its chapter draw at 100 dpi; a page outside this set fails the test
KNOWN_SMALL = set()

def test_figures_at_natural_size(build, visits):
    n, problems = 0, []
    for rel, v in visits.items():
        for src, natural, attr, shown, column in v["figures"]:
            n += 1
            want = min(attr or natural, column)
            if abs(shown - want) > 1: problems.append(f"{rel}: {src} shown {shown:.0f} px wide, natural {attr or natural}, column {column:.0f}")
    assert n > 20 and not problems, problems
    small = build["small_figures"]
    print("figures below", _build_docs().MIN_DPI, "dpi:", sorted({(f["page"], f["dpi"]) for f in small}))
    assert {f["page"] for f in small} <= KNOWN_SMALL, small

def _visible_cells(nb_path: Path, bd):
    "The code cells of a notebook that a page shows (not hidden by `#| hide`, `include` or `echo`)."
    for c in json.loads(nb_path.read_text())["cells"]:
        if c.get("cell_type") != "code": continue
        src = "".join(c["source"])
        opts, code = bd.cell_options(src)
        if re.search(r"^\s*#\|\s*(hide|export|exports|exporti|default_exp)\b", src, re.M): continue
        if bd._false(opts.get("include", True)) or bd._false(opts.get("echo", True)) or not code.strip(): continue
        yield code

def test_test_only_cells_hidden_on_module_pages(build, visits):
    bd = _build_docs()
    assert sum(build["hidden_test_cells"].values()) > 10
    shown = []
    for mod, rel in build["modules"].items():
        shown += [f"{rel}: {c[:80]!r}" for c in visits[rel]["inputs"] if bd.only_tests(c)]
    assert not shown, "test-only cells shown on module pages:\n" + "\n".join(shown)
    n_chapter_tests = 0
    for rel in build["reading_order"]:  # a chapter shows every assertion cell its notebook shows
        expected = sum(bd.only_tests(c) for c in _visible_cells(ROOT / "nbs" / rel.replace(".html", ".ipynb"), bd))
        got = sum(bd.only_tests(c) for c in visits[rel]["inputs"])
        assert got == expected, f"{rel}: {got} assertion cells shown, the notebook has {expected}"
        n_chapter_tests += got
    assert n_chapter_tests > 5
