"""Imports only point down: every module of `distillrec` imports (at the top or inside a function) only from its
own package and the layers below it, in the pipeline order that `docs/architecture.md` describes."""

from __future__ import annotations

import ast
from pathlib import Path

import distillrec

# lowest first; a module may import from its own package and any earlier layer, never from a sibling package
# of its own layer
LAYERS = [
    {
        "manifest",
        "precision",
        "devices",
        "threads",
        "tracking",
        "results",
        "report",
        "codecs",
        "channels",
        "__init__",
    },
    {"data"},
    {"evaluate", "layers", "artifact"},
    {"train", "compress", "compression_aware"},
    {"losses"},
    {"models"},
    {"students", "teachers", "multitask"},
    {"recommend"},
    {"distill"},
    {"config"},
    {"stages"},
    {"tune", "pipeline"},
    {"export", "serve"},
    {"cli"},
    {"__main__"},
]
ROOT = Path(distillrec.__file__).parent


def _top(name: str) -> str:
    """`distillrec.models.sasrec` -> `models`; `distillrec` itself -> `__init__`."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(top: str) -> int:
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"distillrec.{top} is in no layer of this test; add it where it belongs")


def _imports(path: Path) -> set[str]:
    """Every `distillrec` module imported anywhere in the file; `from distillrec import X` counts as importing
    `distillrec.X` (the package's `__init__` loads its public names lazily from the top layers)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "distillrec":
            if node.module == "distillrec":
                found |= {f"distillrec.{a.name}" for a in node.names if a.name != "__version__"}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "distillrec"}
    return found


def _public_module(name: str) -> str:
    """`distillrec.load` (a public name of the package) -> the module that defines it."""
    from distillrec import _EXPORTS

    short = name.split(".", 1)[1] if "." in name else ""
    return _EXPORTS.get(short, name)


def test_every_import_points_down():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        own = relative.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        for name in _imports(path):
            target = _top(_public_module(name))
            if target != own and _layer(target) >= _layer(own):
                wrong.append(f"{relative} imports {name}")
    assert wrong == []


def test_the_layers_name_every_package():
    packages = {
        p.name.removesuffix(".py")
        for p in ROOT.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert packages == set().union(*LAYERS)
