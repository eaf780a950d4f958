"""The module maps (pinncore/__init__.py's docstring and docs/design.md's table) list exactly the
package's modules, so they cannot go stale (issue 19)."""
from __future__ import annotations

import os
import re

import pinncore

PKG = os.path.dirname(os.path.abspath(pinncore.__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the checkout (the package may be installed elsewhere)


def package_modules():
    names = {f[:-3] for f in os.listdir(PKG) if f.endswith(".py") and not f.startswith("__")}
    names |= {f"{d}/" for d in os.listdir(PKG)
              if os.path.isfile(os.path.join(PKG, d, "__init__.py"))}
    return names


def init_map():
    doc = pinncore.__doc__
    block = doc[doc.index("one file per idea"):doc.index("The compiled kernel")]
    return {m.group(1) for m in re.finditer(r"^    ([\w/]+)\s{2,}\S", block, flags=re.M)}


def design_map():
    with open(os.path.join(ROOT, "docs", "design.md"), encoding="utf-8") as f:
        text = f.read()
    rows = re.findall(r"^\| ([\w/]+?)(?:\.py)? \|", text, flags=re.M)
    return {r for r in rows if not r.startswith("csrc/") and r != "module"}


def test_init_docstring_maps_every_module():
    assert init_map() == package_modules()


def test_design_md_maps_every_module():
    assert design_map() == package_modules()


def test_no_module_is_much_over_600_lines():
    """Modules of one job (issue 19: about 600 lines at most), with no exceptions left."""
    long = {}
    for f in os.listdir(PKG):
        if f.endswith(".py"):
            with open(os.path.join(PKG, f), encoding="utf-8") as fh:
                n = sum(1 for _ in fh)
            if n > 650:
                long[f] = n
    assert long == {}
