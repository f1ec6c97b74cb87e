"""The documentation site, checked in a real browser.

Builds the site from the current notebooks (`python tools/build_docs.py`), serves `site/` on 127.0.0.1, and opens every
page in headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright): no console errors, no failed request,
every image loaded, every internal link and anchor resolves, the API reference lists every exported name of every
module, and the search box finds "KL divergence". Screenshots go to `artifacts/docs/`.

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
})"""

@pytest.fixture(scope="module")
def visits(build, server, browser):
    "Every page of the site opened once: what went wrong, its images, links, ids and API tables; screenshots taken."
    shots = {"index.html": "home", next(iter(build["modules"].values()), None): "api",
             next((p for p in build["pages"] if "/" in p), None): "chapter"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    res = {}
    for rel in site_pages():
        page, probs = open_page(browser, server + rel)
        info = page.evaluate(_PAGE_JS)
        info["images"] = page.evaluate(_IMAGES_JS)
        info["problems"] = probs
        if rel in shots: page.screenshot(path=str(ARTIFACTS / f"{shots[rel]}.png"), full_page=True)
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
                    status[url], body = r.status, r.read().decode("utf-8", "replace")
                p = _Ids(); p.feed(body); ids[url] = p.ids
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
    for name in ("home", "api", "chapter"):
        out = ARTIFACTS / f"{name}.png"
        assert out.is_file() and out.stat().st_size > 10_000, out
