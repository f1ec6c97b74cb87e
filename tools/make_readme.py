"""Write README.md from nbs/index.ipynb without Quarto: markdown cells as they are, code cells as Python blocks with
their text outputs; cells marked `#| hide` are left out. CI checks that the README is up to date."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _text(value): return "".join(value) if isinstance(value, list) else value

def _outputs(cell):
    "Text of the stdout and plain-text outputs of a code cell (figures and stderr left out)."
    texts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            if out.get("name") == "stdout": texts.append(_text(out["text"]))
        elif "data" in out and "text/plain" in out["data"] and not any(k.startswith("image/") for k in out["data"]):
            texts.append(_text(out["data"]["text/plain"]))
    return "".join(texts).rstrip()

def cell_markdown(cell):
    "Markdown for one notebook cell, or None when the cell is hidden."
    src = _text(cell["source"]).strip()
    if cell["cell_type"] == "markdown": return src
    if cell["cell_type"] != "code" or not src: return None
    lines = src.splitlines()
    if any(l.strip() in ("#| hide", "#|hide") for l in lines): return None
    code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
    if not code: return None
    block = f"```python\n{code}\n```"
    out = _outputs(cell)
    return block + (f"\n\n```\n{out}\n```" if out else "")

def readme(nb_path=ROOT / "nbs" / "index.ipynb"):
    "The README text made from `nb_path`."
    cells = json.loads(nb_path.read_text())["cells"]
    parts = [m for m in map(cell_markdown, cells) if m]
    return "<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n" + "\n\n".join(parts) + "\n"

if __name__ == "__main__": (ROOT / "README.md").write_text(readme())
