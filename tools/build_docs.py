#!/usr/bin/env python
"""Build the documentation site from the notebooks, offline and without Quarto: `python tools/build_docs.py`.

1. nbdev's own processing (`nbdev.serve.proc_nbs`, what `nbdev_proc_nbs` and `nbdev_docs` run) writes the processed
   notebooks to `_proc/`: frontmatter from the `# Title` / `> description` cell, a `show_doc` cell (executed, rendered
   by nbdev) after every exported symbol, exported and hidden cells removed, doc links added. The notebooks are not
   re-executed: their committed outputs (figures as embedded PNG) are what the site shows.
   Unlike `nbdev_proc_nbs`, this neither tries to install Quarto nor runs `pip install -e .`, and it writes no tracked
   file (`nbs/sidebar.yml`, `nbs/nbdev.yml`, `_modidx.py` stay as they are).
2. Each processed notebook becomes a Markdown page for MkDocs (Material theme) in `build/docs/src/`, rendered the way
   Quarto renders it: CommonMark with tables and `$...$` math (turned into MathML here, so no MathJax and nothing from
   the network), Quarto cell options (`echo`, `output`, `include`, `code-fold`, `fig-cap`, `fig-alt`), outputs by MIME
   type, figures written as PNG files, nbdev's absolute doc links made relative. Headings get the ids Quarto (pandoc)
   would give them, so nbdev's links (`sparsity.html#kl_divergence`) resolve. Every module page ends with a table of
   all names in the module's `__all__`, and `api.html` lists every module and exported name.
3. `mkdocs build --strict` writes the site to `site/` (sidebar, table of contents, offline lunr search).

It reads like a book: the sidebar lists Home, the chapters in `READING_ORDER` (a chapter not listed comes after the
listed ones), then the API reference; code lines wrap instead of scrolling; figures show at their natural size (only
narrowed to the column) and link to the full PNG, and the build lists figures drawn below `MIN_DPI`; on module pages a
cell made only of `assert`s and test calls (`only_tests`) is left out as `#| hide` would, while chapters show theirs.

Open `site/index.html` through a local server: `python -m http.server -d site`. `nbdev_docs` still works where Quarto is
installed (`nbs/_quarto.yml` is untouched).
"""
from __future__ import annotations

import argparse, ast, base64, html, json, os, posixpath, re, shutil, subprocess, sys, time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "docs"   # generated MkDocs project (git-ignored)
SITE = ROOT / "site"              # the built site (git-ignored)

# ---------------------------------------------------------------------------------------------------------------------
# small helpers

def _text(v): return "".join(v) if isinstance(v, list) else (v or "")

_re_ansi = re.compile(r"\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")
def strip_ansi(s): return _re_ansi.sub("", s)

def pandoc_slug(text: str) -> str:
    "The identifier pandoc (so Quarto) gives a heading with this text."
    s = re.sub(r"[^\w\s.-]", "", text.strip().lower())
    s = re.sub(r"\s+", "-", s)
    s = re.sub(r"^[^a-z]+", "", s)
    return s or "section"

class Ids:
    "Unique element ids of one page, pandoc style (`x`, `x-1`, `x-2`)."
    def __init__(self): self.seen = set()
    def add(self, base):
        i, nid = 0, base
        while nid in self.seen: i += 1; nid = f"{base}-{i}"
        self.seen.add(nid)
        return nid

_re_dir = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
def cell_options(src: str):
    "Quarto / nbdev `#| key: value` options of a code cell, and its source without them."
    opts, keep = {}, []
    for line in src.splitlines():
        m = _re_dir.match(line)
        if m: opts[m.group(1)] = m.group(2).strip().strip('"').strip("'")
        else: keep.append(line)
    return opts, "\n".join(keep).strip("\n")

def _false(v): return str(v).strip().lower() in ("false", "no", "0")

# The tutorials in reading order (stems of nbs/tutorials/*.ipynb): the one place that orders the book. A chapter not
# listed here (one added later) comes after those listed, in file-name order; `build_info.json` lists the final order.
READING_ORDER = [
    "index",                     # an overview of the chapters, if the folder gets one
    "sparsity_gradient",         # the objective and its gradient, checked numerically
    "edge_detectors",            # UFLDL's exercise: natural image patches
    "pen_strokes",               # MNIST 784-196
    "feature_learning",          # self-taught learning
    "dimensionality_reduction",
    "denoising",
    "anomaly_detection",
    "scikit_learn",              # the estimators in pipelines
    "contractive_denoising",     # the variants
    "convolutional",
    "stacked",
    "ksparse",
    "variational",
    "interpretability",          # dictionaries of a network's activations
    "language_model",
]

def reading_key(stem: str):
    "Sort key of a chapter: its place in `READING_ORDER`, unlisted chapters after the listed ones by name."
    return (READING_ORDER.index(stem), "") if stem in READING_ORDER else (len(READING_ORDER), stem)

# Calls that only test (fastcore.test, numpy.testing): a module page hides a code cell made only of these and `assert`s,
# as nbdev's `#| hide` would; a chapter (a notebook without `default_exp`) shows them, its headline numbers asserted.
TEST_CALLS = {"test_eq", "test_ne", "test_close", "test_fail", "test_is", "test_eq_type", "test_shuffled", "test_warns",
              "test_stdout", "test_fig_exists", "test_sig", "test_eq_nan"}

def _call_name(f) -> str:
    if isinstance(f, ast.Name): return f.id
    if isinstance(f, ast.Attribute): return _call_name(f.value) + "." + f.attr
    return ""

HOUSEKEEPING = {"plt.close", "gc.collect"}  # calls a test cell may end with, shown nowhere either

def _only_tests(stmts) -> bool:
    def test(s):
        if isinstance(s, ast.Assert): return True
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and _call_name(s.value.func) in HOUSEKEEPING: return "tidy"
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
            name = _call_name(s.value.func)
            return name.rsplit(".", 1)[-1] in TEST_CALLS or ".testing.assert_" in f".{name}"
        if isinstance(s, (ast.For, ast.If)): return _only_tests(s.body) and (not s.orelse or _only_tests(s.orelse))
        return False
    kinds = [test(s) for s in stmts]
    return all(kinds) and any(k is True for k in kinds)

def only_tests(src: str) -> bool:
    "Whether every statement of a code cell is an `assert`, a fastcore test call or a `numpy.testing.assert_*` call (loops of them too)."
    try: return _only_tests(ast.parse(src).body)
    except SyntaxError: return False  # IPython magics and shell lines: shown

def png_dpi(data: bytes):
    "The resolution a PNG says it was drawn at (its pHYs chunk, as matplotlib writes it), or None."
    i = data.find(b"pHYs", 8, 4096)
    if i < 0: return None
    x, unit = int.from_bytes(data[i + 4:i + 8], "big"), data[i + 12]
    return round(x * 0.0254) if unit == 1 else None

MIN_DPI = 90  # below this a 10 pt label is under 12 px tall at the figure's natural size: reported by the build

# ---------------------------------------------------------------------------------------------------------------------
# Markdown (CommonMark, as Jupyter and Quarto read it) -> page Markdown for MkDocs

def _math(tex, opts):
    "TeX -> MathML (rendered by the browser; no script, nothing fetched)."
    from latex2mathml.converter import convert
    display = "block" if opts.get("display_mode") else "inline"
    try: return convert(tex.strip(), display=display)
    except Exception: return f'<code class="tex-fallback">{html.escape(tex)}</code>'

def highlight(code, lang):
    "Pygments HTML in the structure Material for MkDocs styles (as pymdownx.highlight writes it)."
    from pygments import highlight as _hl
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound
    lang = (lang or "text").strip().split()[0] if (lang or "").strip() else "text"
    try: lexer = get_lexer_by_name(lang)
    except ClassNotFound: lexer, lang = get_lexer_by_name("text"), "text"
    body = _hl(code, lexer, HtmlFormatter(nowrap=True))
    return f'<div class="language-{html.escape(lang)} highlight"><pre><span></span><code>{body}</code></pre></div>\n'

def make_md():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.attrs import attrs_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    md = (MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
          .use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True, renderer=_math)
          .use(attrs_plugin))
    def fence(self, tokens, idx, options, env):
        t = tokens[idx]
        return highlight(t.content, t.info.strip().strip("{}.").split(" ")[0] if t.info else "")
    def code_block(self, tokens, idx, options, env): return highlight(tokens[idx].content, "text")
    def math(display):
        def rule(self, tokens, idx, options, env): return _math(tokens[idx].content, {"display_mode": display})
        return rule
    for name, display in (("math_inline", False), ("math_inline_double", True), ("math_block", True), ("math_block_label", True)):
        md.add_render_rule(name, math(display))
    md.add_render_rule("fence", fence)
    md.add_render_rule("code_block", code_block)
    return md

# characters Python-Markdown would read as markup in a heading line
_md_escape = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})

_re_heading_attr = re.compile(r"\s*\{#([^\s}]+)[^}]*\}\s*$")
_re_default_exp = re.compile(r"^\s*#\|\s*default_exp\s+(\S+)", re.MULTILINE)
_re_fenced_div = re.compile(r"^\s*:::.*$", re.MULTILINE)
_re_html_url = re.compile(r"""(\b(?:src|href)\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE)

@dataclass
class Page:
    src: Path                  # notebook, relative to nbs/
    out: str                   # html path in the site, posix, e.g. "tutorials/pen_strokes.html"
    title: str = ""
    description: str = ""
    module: str | None = None  # the module a `default_exp` notebook exports
    fm: dict = field(default_factory=dict)
    anchors: set = field(default_factory=set)  # ids of the headings and rows that links may point to
    hidden_tests: int = 0      # code cells left out as tests only (module pages)
    figures: list = field(default_factory=list)  # [file, width, height, dpi] of each figure
    nb: dict | None = field(default=None, repr=False)  # the processed notebook

    @property
    def md_path(self): return self.out[:-len(".html")] + ".md"
    @property
    def out_dir(self): return posixpath.dirname(self.out)

class PageWriter:
    "Turn one processed notebook into one Markdown page (headings as Markdown, everything else as HTML)."
    def __init__(self, page: Page, site: "Site"):
        self.page, self.site, self.md, self.ids = page, site, site.md, Ids()
        self.nfig, self.meta = 0, {}
        self.files_dir = posixpath.basename(page.out)[:-len(".html")] + "_files"

    # -- links
    def rel(self, target: str) -> str:
        "`target` (a path from the site root, maybe with #fragment) relative to this page."
        path, _, frag = target.partition("#")
        r = posixpath.relpath(path or self.page.out, self.page.out_dir or ".") if path else ""
        return r + (f"#{frag}" if frag else "")

    def fix_url(self, url: str) -> str:
        base = self.site.base_url
        if base and url.startswith(base): return self.rel(url[len(base):] or "index.html")
        if not url or url.startswith("#") or re.match(r"^[a-zA-Z][\w+.-]*:", url): return url
        if url.startswith("/"): return self.rel(url.lstrip("/"))
        path, sep, frag = url.partition("#")
        src = posixpath.normpath(posixpath.join(self.page.src.parent.as_posix(), path))
        target = self.site.by_src.get(src)
        if target is None and Path(src).suffix in (".ipynb", ".qmd", ".md"):
            target = self.site.by_src.get(str(Path(src).with_suffix(".ipynb")))
        if target is not None: return self.rel(target.out + (f"#{frag}" if sep else ""))
        self.site.copy_resource(src)
        return url

    def _fix_tokens(self, tokens, env):
        for t in tokens:
            if t.type == "link_open" and t.attrGet("href") is not None:
                href = t.attrGet("href")
                if self.site.base_url and href.startswith(self.site.base_url) and "#" in href:  # an nbdev doc link
                    t.attrSet("data-doc-link", href[len(self.site.base_url):])
                t.attrSet("href", self.fix_url(href))
            elif t.type == "image":
                s = t.attrGet("src") or ""
                if s.startswith("attachment:"): t.attrSet("src", self.attachment(s[len("attachment:"):], env))
                else: t.attrSet("src", self.fix_url(s))
            elif t.type in ("html_block", "html_inline"):
                t.content = _re_html_url.sub(lambda m: m.group(1) + m.group(2) + self.fix_url(m.group(3)) + m.group(2), t.content)
            if t.children: self._fix_tokens(t.children, env)

    def attachment(self, name, env):
        att = (env.get("attachments") or {}).get(name)
        if not att: return "attachment:" + name
        mime, data = next(iter(att.items()))
        return self.write_file(name, base64.b64decode(_text(data)))

    def write_file(self, name, data: bytes) -> str:
        rel = f"{self.files_dir}/{name}"
        dst = self.site.src_dir / self.page.out_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        return rel

    # -- markdown
    def heading_md(self, tokens, level, inline) -> str:
        raw = inline.content
        m = _re_heading_attr.search(raw)
        children = inline.children or []
        parts, plain = [], []
        for t in children:
            if t.type == "text": parts.append(t.content.translate(_md_escape)); plain.append(t.content)
            elif t.type == "code_inline":
                tick = "``" if "`" in t.content else "`"
                parts.append(f"{tick}{' ' if tick == '``' else ''}{t.content}{' ' if tick == '``' else ''}{tick}"); plain.append(t.content)
            elif t.type in ("softbreak", "hardbreak"): parts.append(" "); plain.append(" ")
            else: parts.append(self.md.renderer.renderInline([t], self.md.options, {}))
        text = "".join(parts).strip()
        if m:
            text = _re_heading_attr.sub("", text).rstrip()
            text = re.sub(r"\s*\\\{\\#.*$", "", text)  # the escaped form of the same attribute block
            hid = self.ids.add(m.group(1))
        else: hid = self.ids.add(pandoc_slug("".join(plain)))
        self.page.anchors.add(hid)
        return f"{'#' * level} {text} {{ #{hid} }}"

    def markdown(self, src: str, attachments=None) -> str:
        "Page Markdown for a Markdown text: headings as Markdown lines (for the TOC), blocks between as raw HTML."
        src = _re_fenced_div.sub("", src)  # Quarto fenced divs (`::: {.x}`): keep the content, drop the fences
        env = {"attachments": attachments or {}}
        tokens = self.md.parse(src, env)
        self._fix_tokens(tokens, env)
        out, chunk, i = [], [], 0
        def flush():
            if chunk:
                body = self.md.renderer.render(chunk, self.md.options, env).strip()
                if re.sub(r"<!--.*?-->", "", body, flags=re.S).strip(): out.append(f'<div class="nb-md">\n{body}\n</div>')
                chunk.clear()
        while i < len(tokens):
            t = tokens[i]
            if t.type == "heading_open" and t.level == 0:
                flush()
                out.append(self.heading_md(tokens, int(t.tag[1]), tokens[i + 1]))
                i += 3; continue
            chunk.append(t); i += 1
        flush()
        return "\n\n".join(out)

    # -- cells
    def code_cell(self, cell) -> str:
        opts, src = cell_options(_text(cell.get("source", "")))
        if _false(opts.get("include", True)): return ""
        if self.page.module and src.strip() and only_tests(src):
            self.page.hidden_tests += 1
            return ""
        parts = []
        lang = (cell.get("metadata") or {}).get("language") or self.site.nb_lang
        if src.strip() and not _false(opts.get("echo", True)):
            code = highlight(src, lang)
            fold = opts.get("code-fold")
            if fold and not _false(fold):
                summary = html.escape(opts.get("code-summary", "Code"))
                code = f'<details class="nb-fold"{" open" if fold == "show" else ""}><summary>{summary}</summary>\n{code}</details>'
            parts.append(f'<div class="nb-input">\n{code}</div>')
        if not _false(opts.get("output", True)):
            for o in self.outputs(cell.get("outputs", []), opts): parts.append(o)
        return "\n\n".join(parts)

    def outputs(self, outputs, opts):
        merged = []
        for o in outputs:  # consecutive stream outputs of one name read as one block
            if o.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" and merged[-1]["name"] == o["name"]:
                merged[-1] = {**merged[-1], "text": _text(merged[-1]["text"]) + _text(o["text"])}
            else: merged.append(o)
        for o in merged:
            kind = o.get("output_type")
            if kind == "stream":
                txt = strip_ansi(_text(o.get("text"))).rstrip("\n")
                if txt: yield f'<div class="nb-output nb-{o.get("name", "stdout")}"><pre>{html.escape(txt)}</pre></div>'
            elif kind == "error":
                txt = strip_ansi("\n".join(o.get("traceback") or [f'{o.get("ename")}: {o.get("evalue")}']))
                yield f'<div class="nb-output nb-error"><pre>{html.escape(txt)}</pre></div>'
            elif kind in ("execute_result", "display_data"):
                self.meta = o.get("metadata") or {}
                r = self.rich(o.get("data", {}), opts)
                if r: yield r

    def rich(self, data, opts):
        if "text/html" in data and "<script" not in _text(data["text/html"]).lower():
            return f'<div class="nb-output nb-html">\n{_text(data["text/html"]).strip()}\n</div>'
        for mime, ext in (("image/svg+xml", "svg"), ("image/png", "png"), ("image/jpeg", "jpg"), ("image/gif", "gif")):
            if mime in data:
                self.nfig += 1
                raw = _text(data[mime])
                blob = raw.encode() if mime == "image/svg+xml" else base64.b64decode(raw)
                rel = self.write_file(f"figure-{self.nfig}.{ext}", blob)
                cap = opts.get("fig-cap", "")
                alt = opts.get("fig-alt") or cap or f"Figure {self.nfig} of {self.page.title}"
                figcap = f"<figcaption>{html.escape(cap)}</figcaption>" if cap else ""
                size = ""
                if ext == "png" and blob[12:16] == b"IHDR":  # drawn at its natural size (narrowed only to the column)
                    w, h = int.from_bytes(blob[16:20], "big"), int.from_bytes(blob[20:24], "big")
                    meta = (self.meta or {}).get(mime) or {}  # Jupyter's display size (a retina figure's half size)
                    w, h = int(meta.get("width", w)), int(meta.get("height", h * int(meta.get("width", w)) // w))
                    size = f' width="{w}" height="{h}"'
                    self.page.figures.append([rel, w, h, png_dpi(blob)])
                return (f'<figure class="nb-figure"><a href="{html.escape(rel)}" title="the figure at full size">'
                        f'<img src="{html.escape(rel)}" alt="{html.escape(alt)}"{size}></a>{figcap}</figure>')
        if "text/markdown" in data: return self.markdown(self.site.tidy_show_doc(_text(data["text/markdown"])))
        if "text/latex" in data:
            tex = _text(data["text/latex"]).strip().strip("$")
            return f'<div class="nb-output nb-latex">{_math(tex, {"display_mode": True})}</div>'
        if "text/plain" in data:
            return f'<div class="nb-output"><pre>{html.escape(strip_ansi(_text(data["text/plain"])))}</pre></div>'
        return ""

    def render(self, nb) -> str:
        p = self.page
        self.ids.add(pandoc_slug(p.title)); p.anchors.add(pandoc_slug(p.title))
        parts = [f"# {p.title.translate(_md_escape)} {{ #{pandoc_slug(p.title)} }}"]
        if p.description:
            desc = self.md.renderInline(p.description)
            parts.append(f'<div class="nb-lead"><p>{desc}</p></div>')
        for cell in nb["cells"]:
            ct = cell.get("cell_type")
            if ct == "markdown":
                md = self.markdown(_text(cell.get("source", "")), cell.get("attachments"))
                if md: parts.append(md)
            elif ct == "code":
                c = self.code_cell(cell)
                if c: parts.append(c)
            elif ct == "raw":
                fmt = (cell.get("metadata") or {}).get("format") or (cell.get("metadata") or {}).get("raw_mimetype", "")
                if fmt in ("text/html", "html"): parts.append(f'<div>\n{_text(cell.get("source"))}\n</div>')
        if p.module: parts.append(self.site.exports_section(p, self))
        return "\n\n".join(x for x in parts if x.strip()) + "\n"

# ---------------------------------------------------------------------------------------------------------------------
# the package's exported names, read from the exported modules (no import, so no TensorFlow start-up here)

def module_exports(module: str, lib_path: Path):
    "[(name, kind, summary)] for every name of `module`'s `__all__`, in order."
    f = lib_path / (module.replace(".", "/") + ".py")
    if not f.exists(): f = lib_path / module.replace(".", "/") / "__init__.py"
    if not f.exists(): return []
    src = f.read_text(encoding="utf-8")
    tree = ast.parse(src)
    names, defs = [], {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    if t.id == "__all__" and node.value is not None:
                        try: names = list(ast.literal_eval(node.value))
                        except Exception: pass
                    else: defs[t.id] = node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): defs[node.name] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names: defs.setdefault((a.asname or a.name).split(".")[0], node)
    res = []
    for n in names:
        node = defs.get(n)
        if isinstance(node, ast.ClassDef): kind, summ = "class", (ast.get_docstring(node) or "").split("\n")[0]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)): kind, summ = "function", (ast.get_docstring(node) or "").split("\n")[0]
        elif isinstance(node, (ast.Import, ast.ImportFrom)): kind, summ = "imported", ""
        elif node is not None and getattr(node, "value", None) is not None:
            kind = "constant"
            v = ast.get_source_segment(src, node.value) or ""
            v = " ".join(v.split())
            summ = f"`= {v[:90]}{' ...' if len(v) > 90 else ''}`"
        else: kind, summ = "name", ""
        res.append((n, kind, summ))
    return res

# ---------------------------------------------------------------------------------------------------------------------
# the site

class Site:
    def __init__(self, src_dir: Path):
        from nbdev.config import get_config
        self.cfg = cfg = get_config()
        self.nbs = cfg.nbs_path
        self.lib_path, self.lib_name = cfg.lib_path, cfg.lib_name
        host, sub = cfg.get("doc_host", "").rstrip("/"), cfg.get("doc_baseurl", "/").strip("/")
        self.base_url = f"{host}/{sub + '/' if sub else ''}" if host else ""  # where nbdev's doc links point
        self.src_dir = src_dir
        self.md = make_md()
        self.pages: list[Page] = []
        self.by_src: dict[str, Page] = {}
        self.exports: dict[str, list] = {}
        self.nb_lang = "python"

    _re_fence = re.compile(r"```python\n(.*?)```", re.S)
    _re_md_link = re.compile(r"\[(`[^`\]]+`)\]\([^)\s]+\)")
    _re_heading = re.compile(r"^###\s+(\S+)\s*$", re.M)
    def tidy_show_doc(self, md: str) -> str:
        """nbdev's `show_doc` Markdown as a reader should see it: the `source` link to the site's own source page (not
        `git_url`), no Markdown links inside the signature, and a property shown as a property."""
        git = (self.cfg.get("git_url") or "").rstrip("/")
        if git:
            md = re.sub(rf"\]\({re.escape(git)}/blob/[^/]+/{re.escape(self.lib_name)}/([\w/]+\.py)#L(\d+)\)",
                        lambda m: f"](/source/{m.group(1)}.html#L-{m.group(2)})", md)
        heading = self._re_heading.search(md)
        def fence(m):
            code = self._re_md_link.sub(r"\1", m.group(1))
            if heading and "." in heading.group(1) and self.is_property(heading.group(1)):
                name = heading.group(1).rsplit(".", 1)[1]
                code = re.sub(rf"^def {re.escape(name)}\(\):", f"@property\ndef {name}(self):", code, flags=re.M)
            return f"```python\n{code}```"
        return self._re_fence.sub(fence, md)

    def dotted(self, module: str) -> str:
        "The import path of one of the package's modules (`__init__`, from `default_exp __init__`, is the package itself)."
        return self.lib_name if module == "__init__" else f"{self.lib_name}.{module}"

    def is_property(self, qualname: str) -> bool:
        "Whether `Class.attr`, a name of the package's modules, is a property."
        import importlib
        cls_name, attr = qualname.rsplit(".", 1)
        for module in self.exports:
            cls = getattr(importlib.import_module(self.dotted(module)), cls_name, None)
            if isinstance(cls, type): return isinstance(getattr(cls, attr, None), property)
        return False

    def source_pages(self) -> list:
        "One highlighted page per module, lines anchored as `L-<n>`: where the `source` links of the API pages point."
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
        css = HtmlFormatter().get_style_defs(".highlight")
        written = []
        for module in sorted(self.exports):
            py = self.lib_path / f"{module.replace('.', '/')}.py"
            page = next(p for p in self.pages if p.module == module)
            body = highlight(py.read_text(encoding="utf-8"), PythonLexer(), HtmlFormatter(linenos="inline", lineanchors="L", anchorlinenos=True))
            doc = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{self.lib_name}/{py.name}</title>\n'
                   '<link rel="icon" href="data:,">\n'  # no favicon request: the browser would log its 404 as an error
                   f"<style>body{{font-family:sans-serif;margin:1em 2em}} .highlight pre{{font-size:0.8rem;line-height:1.35;white-space:pre-wrap;overflow-wrap:anywhere}} "
                   f".linenos{{color:#999;padding-right:1em}} {css}</style></head>\n<body>\n"
                   f'<p><a href="../{html.escape(page.out)}">{html.escape(page.title)}</a> &middot; <code>{self.lib_name}/{py.name}</code>, '
                   f"exported by nbdev from <code>nbs/{html.escape(page.src.as_posix())}</code>: edit the notebook, not this file.</p>\n"
                   f"{body}</body></html>\n")
            dst = self.src_dir / "source" / f"{module.replace('.', '/')}.py.html"
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(doc, encoding="utf-8")
            written.append(dst.relative_to(self.src_dir).as_posix())
        return written

    def copy_resource(self, rel: str):
        "Copy a file a notebook links to (an image in nbs/, say) to the same place in the site."
        s = (self.nbs / rel).resolve()
        try: s.relative_to(self.nbs.resolve())
        except ValueError: return
        if s.is_file():
            d = self.src_dir / rel
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)

    def collect(self, proc: Path):
        "Every notebook in nbs/ (as nbdev finds them), with its page path, title and module."
        from nbdev.doclinks import nbglob, _nbpath2html
        files = sorted(nbglob(self.nbs, func=Path, skip_folder_re=r"(?:^[_.]|^www\$)"))
        for f in files:
            rel = f.relative_to(self.nbs)
            pf = proc / rel
            if not pf.exists(): raise SystemExit(f"build_docs: {pf} missing: nbdev's processing failed for {rel}")
            nb = json.loads(pf.read_text(encoding="utf-8"))
            fm = frontmatter(nb)
            out = fm.get("output-file") or _nbpath2html(rel).name
            out = posixpath.join(rel.parent.as_posix(), out) if rel.parent != Path(".") else out
            orig = json.loads(f.read_text(encoding="utf-8"))  # `default_exp` is gone from the processed notebook
            exps = [m.group(1) for c in orig["cells"] if c.get("cell_type") == "code"
                    for m in [_re_default_exp.search(_text(c.get("source", "")))] if m]
            p = Page(src=rel, out=out, title=str(fm.get("title") or rel.stem), description=str(fm.get("description") or ""),
                     module=exps[0] if exps else None, fm=fm, nb=nb)
            self.pages.append(p); self.by_src[rel.as_posix()] = p
            if p.module: self.exports[p.module] = module_exports(p.module, self.lib_path)

    _re_doc_link = re.compile(r'<a href="[^"]*" data-doc-link="([^"#]*)#([^"]*)"[^>]*>(.*?)</a>', re.S)
    def drop_dead_doc_links(self) -> list:
        """nbdev links every backticked name of the package to `page.html#name`, private helpers too, which have no
        `show_doc` and so no anchor: keep those as plain code, and keep the links that resolve (marked for nothing)."""
        anchors = {p.out: p.anchors for p in self.pages}
        dropped = []
        def sub(m):
            page, frag, inner = m.group(1), m.group(2), m.group(3)
            if frag in anchors.get(page, ()): return m.group(0).replace(f' data-doc-link="{page}#{frag}"', "")
            dropped.append(f"{page}#{frag}")
            return inner
        for p in self.pages:
            f = self.src_dir / p.md_path
            f.write_text(self._re_doc_link.sub(sub, f.read_text(encoding="utf-8")), encoding="utf-8")
        return sorted(set(dropped))

    def exports_section(self, page: Page, w: PageWriter) -> str:
        names = self.exports.get(page.module, [])
        hid = w.ids.add("exported-names"); page.anchors.add(hid)
        rows = []
        for n, kind, summ in names:
            a = pandoc_slug(n)
            if a in page.anchors: link, rid = f'<a href="#{a}"><code>{html.escape(n)}</code></a>', ""
            else:
                a = w.ids.add(a); page.anchors.add(a)
                link, rid = f"<code>{html.escape(n)}</code>", f' id="{a}"'
            rows.append(f'<tr{rid} data-name="{html.escape(n)}"><td>{link}</td><td>{kind}</td><td>{self.md.renderInline(summ)}</td></tr>')
        dotted = html.escape(self.dotted(page.module))
        table = ('<div class="nb-md nb-exports">\n<p>Every name in <code>'
                 f'{dotted}.__all__</code>'
                 f' (<code>from {dotted} import *</code>):</p>\n'
                 f'<table data-module="{dotted}">\n'
                 '<thead><tr><th>name</th><th>kind</th><th>summary</th></tr></thead>\n<tbody>\n'
                 + "\n".join(rows) + "\n</tbody></table>\n</div>")
        return f"## Exported names {{ #{hid} }}\n\n{table}"

    def api_page(self) -> str:
        mods = [p for p in self.pages if p.module]
        parts = ["# API reference { #api-reference }",
                 '<div class="nb-md">\n<p>Every module of the package, one page each (made from its '
                 f"notebook), and every name it exports. Import a name with <code>from {html.escape(self.lib_name)}"
                 ".MODULE import NAME</code>.</p>\n</div>"]
        for p in mods:
            full = f"{self.lib_name}.{p.module}"
            rows = []
            for n, kind, summ in self.exports.get(p.module, []):
                rows.append(f'<tr data-name="{html.escape(n)}"><td><a href="{html.escape(p.out)}#{pandoc_slug(n)}"><code>{html.escape(n)}</code></a></td>'
                            f"<td>{kind}</td><td>{self.md.renderInline(summ)}</td></tr>")
            parts.append(f"## `{full}` {{ #{full} }}")
            parts.append(f'<div class="nb-md nb-exports">\n<p><a class="api-module" data-module="{html.escape(full)}" '
                         f'href="{html.escape(p.out)}">{html.escape(p.title)}</a>: {self.md.renderInline(p.description)}</p>\n'
                         f'<table data-module="{html.escape(full)}">\n<thead><tr><th>name</th><th>kind</th><th>summary</th></tr></thead>\n'
                         "<tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n</div>")
        return "\n\n".join(parts) + "\n"

    def chapters(self) -> list:
        "The pages without a module, folder by folder, each folder's in reading order (`READING_ORDER`)."
        rest = [p for p in self.pages if not p.module and p.src != Path("index.ipynb")]
        return sorted(rest, key=lambda p: (p.src.parent.as_posix(), reading_key(p.src.stem)))

    def nav(self):
        "Home, the chapters (folders as sections, in reading order), then the API reference (module pages in notebook order)."
        def item(p): return {p.title: p.md_path}
        nav = []
        home = self.by_src.get("index.ipynb")
        if home: nav.append({"Home": home.md_path})
        mods = [p for p in self.pages if p.module]
        sections: dict[str, list] = {}
        for p in self.chapters():
            if p.src.parent == Path("."): nav.append(item(p)); continue
            sec = p.src.parent.as_posix()
            if sec not in sections:
                sections[sec] = []
                label = " / ".join(re.sub(r"^\d+_", "", s).replace("_", " ").capitalize() for s in p.src.parent.parts)
                nav.append({label: sections[sec]})
            if p.src.stem == "index": sections[sec].insert(0, {"Overview": p.md_path})
            else: sections[sec].append(item(p))
        if mods: nav.append({"API reference": [{"Overview": "api.md"}] + [item(p) for p in mods]})
        return nav

def frontmatter(nb) -> dict:
    "The YAML frontmatter nbdev put in the first raw cell."
    import yaml
    for c in nb["cells"][:2]:
        if c.get("cell_type") == "raw":
            s = _text(c.get("source")).strip()
            if s.startswith("---"):
                nb["cells"].remove(c)
                return yaml.safe_load(s.strip("-\n")) or {}
    return {}

CSS = """\
/* notebook cells on the MkDocs site (tools/build_docs.py) */
.md-typeset .nb-lead p { font-size: 1.05rem; color: var(--md-default-fg-color--light); margin-top: -0.4rem; }
.md-typeset .nb-input { margin: 1em 0 0.4em; }
.md-typeset .nb-output pre { margin: 0.2em 0 1em; padding: 0.5em 0.8em; background: transparent;
  border-left: 3px solid var(--md-default-fg-color--lightest); white-space: pre-wrap; font-size: 0.72rem; }
.md-typeset .nb-stderr pre { border-left-color: #e0a800; }
.md-typeset .nb-error pre { border-left-color: #d33; }
.md-typeset .nb-figure { margin: 0.6em 0 1.2em; text-align: center; }
.md-typeset .nb-figure img { max-width: 100%; height: auto; }
/* code wraps at the column's edge instead of scrolling (a reader at 1280 px sees every line) */
.md-typeset pre > code, .md-typeset .nb-output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.md-typeset .nb-html { overflow-x: auto; }
.md-typeset details.nb-fold { border: 1px solid var(--md-default-fg-color--lightest); border-radius: 0.2rem; padding: 0 0.6rem; }
.md-typeset details.nb-fold > summary { cursor: pointer; color: var(--md-default-fg-color--light); font-size: 0.75rem; }
.md-typeset hr { margin: 1.6em 0 0.4em; }
.md-typeset math[display="block"] { display: block; margin: 0.8em 0; overflow-x: auto; }
.md-typeset a[style*="float:right"] { margin-left: 1em; }
"""

def mkdocs_config(site: Site, site_dir: Path) -> dict:
    cfg = site.cfg
    return {
        "site_name": cfg.get("title", cfg.lib_name),
        "site_description": cfg.get("description", ""),
        "site_author": cfg.get("author", ""),
        "copyright": f"Copyright {cfg.get('copyright', '')}".strip(),
        "docs_dir": "src",
        "site_dir": os.path.relpath(site_dir, BUILD),
        "use_directory_urls": False,
        "strict": True,
        "theme": {"name": "material", "font": False, "language": "en",
                  "features": ["navigation.sections", "navigation.top", "navigation.footer", "toc.follow",
                               "search.highlight", "search.share", "content.code.copy"],
                  "palette": {"primary": "indigo", "accent": "indigo"}},
        "plugins": ["search"],
        "markdown_extensions": [{"toc": {"permalink": True}}, "attr_list", "tables"],
        "extra_css": ["assets/notebooks.css"],
        "extra": {"generator": False},
        "validation": {"nav": {"omitted_files": "warn", "not_found": "warn"},
                       "links": {"not_found": "warn", "unrecognized_links": "info", "absolute_links": "info"}},
        "nav": site.nav(),
    }

# ---------------------------------------------------------------------------------------------------------------------

def _where(msg: str) -> str:
    "The notebook and cell that nbdev's error message (which numbers the processed cells) is about."
    src = msg.partition(" :\n")[2].strip()
    if not src: return ""
    from nbdev.config import get_config
    nbs = get_config().nbs_path
    hits = [f"{f.relative_to(ROOT)}, cell {i} (0-based)" for f in sorted(nbs.rglob("*.ipynb")) if "_proc" not in f.parts
            for i, c in enumerate(json.loads(f.read_text(encoding="utf-8"))["cells"])
            if c.get("cell_type") == "code" and _text(c.get("source")).strip() == src]
    return "".join(f"build_docs: the failing cell is {h}\n" for h in hits)

def build(site_dir: Path = SITE, force: bool = False, n_workers: int | None = None, quiet: bool = False, verbose: bool = False) -> dict:
    t0 = time.time()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the spawned nbdev workers import TensorFlow through the package
    os.chdir(ROOT)
    from fastcore.basics import defaults
    from nbdev.serve import proc_nbs
    try: proc = proc_nbs(force=force, n_workers=n_workers or defaults.cpus)
    except Exception as e:  # nbdev executes each notebook's import, exported and show_doc cells; say which one failed
        raise SystemExit(f"build_docs: nbdev's processing of the notebooks failed: {e}\n{e.__cause__ or ''}\n"
                         f"{_where(str(e))}(nbdev runs every cell that exports code, imports something or calls show_doc, "
                         "and nothing else: a cell that mixes imports with other code runs without the cells before "
                         "it; keep imports in cells of their own. `nbdev_docs` fails the same way.)") from e
    t1 = time.time()

    src_dir = BUILD / "src"
    if BUILD.exists(): shutil.rmtree(BUILD)
    src_dir.mkdir(parents=True)
    site = Site(src_dir)
    site.collect(Path(proc))
    for p in site.pages:
        md = PageWriter(p, site).render(p.nb)
        dst = src_dir / p.md_path
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(md, encoding="utf-8")
    (src_dir / "api.md").write_text(site.api_page(), encoding="utf-8")
    sources = site.source_pages()
    dropped = site.drop_dead_doc_links()
    (src_dir / "assets").mkdir(exist_ok=True)
    (src_dir / "assets" / "notebooks.css").write_text(CSS, encoding="utf-8")
    import yaml
    (BUILD / "mkdocs.yml").write_text(yaml.safe_dump(mkdocs_config(site, site_dir), sort_keys=False, allow_unicode=True), encoding="utf-8")
    t2 = time.time()

    if site_dir.exists(): shutil.rmtree(site_dir)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(BUILD / "mkdocs.yml")],
                       env=env, capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"build_docs: mkdocs build failed (exit {r.returncode})")
    t3 = time.time()
    pages = [p.out for p in site.pages] + ["api.html"]
    small = [{"page": p.out, "figure": f, "width": w, "height": h, "dpi": dpi} for p in site.pages
             for f, w, h, dpi in p.figures if dpi is not None and dpi < MIN_DPI]
    info = {"site": str(site_dir), "pages": pages, "sources": sources,
            "reading_order": [p.out for p in site.chapters()],
            "hidden_test_cells": {p.out: p.hidden_tests for p in site.pages if p.hidden_tests},
            "figures": {p.out: p.figures for p in site.pages if p.figures}, "small_figures": small,
            "modules": {f"{site.lib_name}.{p.module}": p.out for p in site.pages if p.module},
            "seconds": {"nbdev_proc_nbs": round(t1 - t0, 1), "pages": round(t2 - t1, 1), "mkdocs": round(t3 - t2, 1),
                        "total": round(t3 - t0, 1)}}
    (BUILD / "build_info.json").write_text(json.dumps(info, indent=1))
    if not quiet:
        print(f"build_docs: {len(pages)} pages in {site_dir.relative_to(ROOT) if site_dir.is_relative_to(ROOT) else site_dir}/ "
              f"in {info['seconds']['total']} s (nbdev processing {info['seconds']['nbdev_proc_nbs']} s, "
              f"pages {info['seconds']['pages']} s, mkdocs {info['seconds']['mkdocs']} s)")
        for p in pages: print("  ", p)
        print(f"build_docs: {sum(info['hidden_test_cells'].values())} test-only cells hidden on {len(info['hidden_test_cells'])} module pages")
        if small: print(f"build_docs: {len(small)} figures drawn below {MIN_DPI} dpi (their labels are small at natural size): "
                        + ", ".join(sorted({f"{f['page']} ({f['dpi']} dpi)" for f in small})))
        if dropped and verbose: print(f"build_docs: nbdev doc links to names without a show_doc entry, kept as plain code: {', '.join(dropped)}")
    return info

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=SITE, help="where to write the site (default: site/)")
    ap.add_argument("--force", action="store_true", help="reprocess every notebook (default: only those changed since the last build)")
    ap.add_argument("--n-workers", type=int, default=None, help="processes for nbdev's processing (default: CPU count)")
    ap.add_argument("--verbose", action="store_true", help="also list the backticked private names left without a link")
    a = ap.parse_args(argv)
    build(a.out.resolve(), force=a.force, n_workers=a.n_workers, verbose=a.verbose)

if __name__ == "__main__": main()
