"""The editor sees everything: every public method and property of every public class of the package is found by
static inspection (jedi's completion, as an editor asks it, and the class bodies' syntax tree), and `help()` of each
class names each `__init__` parameter with its meaning (the docments comments rendered into the docstring)."""
import ast
import importlib
import inspect
import pkgutil
import pydoc
import re
from pathlib import Path

import jedi
import pytest
from fastcore.docments import docments

import sparse_ae_tf

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.iter_modules(sparse_ae_tf.__path__) if not m.name.startswith("_"))

def _public_classes():
    "(module, class name) of every public class the package defines."
    out = []
    for name in MODULES:
        module = importlib.import_module(f"sparse_ae_tf.{name}")
        out += [(name, n) for n, o in vars(module).items()
                if isinstance(o, type) and not n.startswith("_") and o.__module__ == module.__name__]
    return out

CLASSES = _public_classes()

def _own_members(cls):
    "Public methods and properties that this package's classes in `cls`'s MRO define (what `@patch` would add too)."
    out = set()
    for k in cls.__mro__:
        if not k.__module__.startswith("sparse_ae_tf"): continue
        out |= {n for n, v in vars(k).items() if not n.startswith("_")
                and (inspect.isfunction(v) or isinstance(v, (property, classmethod, staticmethod)))}
    return out

def _class_body_names(cls):
    "Names defined in the class bodies (syntax tree) of this package's classes in `cls`'s MRO."
    out = set()
    for k in cls.__mro__:
        if not k.__module__.startswith("sparse_ae_tf"): continue
        tree = ast.parse(Path(inspect.getsourcefile(k)).read_text())
        node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == k.__name__)
        out |= {s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return out

def test_there_are_classes():
    names = {n for _, n in CLASSES}
    assert {"SparseAutoencoder", "VariationalAutoencoder", "KSparseAutoencoder", "SparseAEDetector"} <= names, names

@pytest.mark.parametrize("module,name", CLASSES)
def test_members_in_class_bodies(module, name):
    cls = getattr(importlib.import_module(f"sparse_ae_tf.{module}"), name)
    missing = _own_members(cls) - _class_body_names(cls)
    assert not missing, f"{name}: defined outside its class body (e.g. by @patch): {sorted(missing)}"

def test_no_patch_left():
    for path in (ROOT / "sparse_ae_tf").glob("*.py"):
        tree = ast.parse(path.read_text())
        patched = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                   and any("patch" in ast.unparse(d) for d in n.decorator_list)]
        assert not patched, f"{path.name}: @patch on {patched}"

_PROJECT = jedi.Project(str(ROOT))

@pytest.mark.parametrize("module,name", CLASSES)
def test_jedi_completes_every_member(module, name):
    cls = getattr(importlib.import_module(f"sparse_ae_tf.{module}"), name)
    code = f"from sparse_ae_tf.{module} import {name}\n{name}."
    completed = {c.name for c in jedi.Script(code, path=str(ROOT / "_editor_probe.py"), project=_PROJECT).complete(2, len(name) + 1)}
    missing = _own_members(cls) - completed
    assert not missing, f"jedi does not complete {name}.{sorted(missing)}"

@pytest.mark.parametrize("name", [n for n in sparse_ae_tf.__all__ if isinstance(getattr(sparse_ae_tf, n), type)])
def test_help_explains_every_parameter(name):
    cls = getattr(sparse_ae_tf, name)
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    init = next(vars(k)["__init__"] for k in cls.__mro__ if "__init__" in vars(k))
    params = [p for p in inspect.signature(init).parameters.values() if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    comments = docments(init, returns=False)
    for p in params:
        assert re.search(rf"^[ |]*{p.name}( : .*)?$", text, re.M), f"help({name}) does not list parameter {p.name}"
        if comments.get(p.name): assert comments[p.name] in text, f"help({name}) does not explain {p.name}: {comments[p.name]!r}"

def test_model_modules_document_their_classes():
    "Imported from their modules (not through the package), the model classes explain their parameters too."
    from sparse_ae_tf.models import SparseAutoencoder
    from sparse_ae_tf.vae import VariationalAutoencoder
    for cls in (SparseAutoencoder, VariationalAutoencoder):
        assert "Parameters\n----------\ninput_dim : int\n" in cls.__init__.__doc__, cls

def test_package_docstring():
    assert sparse_ae_tf.__doc__ and sparse_ae_tf.__doc__.startswith("The names most users need"), sparse_ae_tf.__doc__
    assert sparse_ae_tf.__version__

def _import_graph():
    "Each module of the package -> the package modules it imports anywhere in its code (top level or inside functions)."
    pkg = ROOT / "sparse_ae_tf"
    mods = {p.stem for p in pkg.glob("*.py")} - {"__init__", "_modidx"}
    graph = {}
    for m in mods:
        deps = set()
        for n in ast.walk(ast.parse((pkg / f"{m}.py").read_text())):
            if isinstance(n, ast.ImportFrom):
                if n.level == 1: deps |= {n.module.split(".")[0]} if n.module else {a.name for a in n.names}
                elif n.module and n.module.startswith("sparse_ae_tf."): deps.add(n.module.split(".")[1])
                elif n.module == "sparse_ae_tf": deps |= {a.name for a in n.names}
            elif isinstance(n, ast.Import):
                deps |= {a.name.split(".")[1] for a in n.names if a.name.startswith("sparse_ae_tf.")}
        graph[m] = deps & mods - {m}
    return graph

def test_import_graph_has_no_cycle():
    graph, state, path = _import_graph(), {}, []
    def visit(m):
        state[m] = "open"; path.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open": pytest.fail("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state: visit(d)
        state[m] = "done"; path.pop()
    for m in sorted(graph):
        if m not in state: visit(m)
    assert {"models", "variants", "vae", "files", "training", "defaults", "steps", "feeds", "base"} <= set(graph)

def test_model_modules_import_no_training_cli_or_plots():
    graph = _import_graph()
    for m in ("defaults", "steps", "feeds", "base", "models", "variants", "vae", "sparsity", "noise"):
        assert not graph[m] & {"training", "cli", "plots"}, (m, sorted(graph[m]))
    assert not graph["files"] & {"models", "variants", "vae"}, sorted(graph["files"])

def test_model_base_layers_import_downwards():
    "The model base's modules, in their notebooks' order: each imports only those before it (base imports them all)."
    graph, layers = _import_graph(), ["defaults", "steps", "feeds", "base"]
    for i, m in enumerate(layers):
        assert not graph[m] & set(layers[i + 1:]), (m, sorted(graph[m]))
    assert set(layers[:-1]) <= graph["base"], sorted(graph["base"])
