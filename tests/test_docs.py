"""The Python examples in the docs run."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.mark.parametrize("page", ["api.md"])
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (DOCS / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"{page} has no Python example"
    for block in blocks:
        exec(compile(block.replace("/tmp/", f"{tmp_path}/"), page, "exec"), {})


def test_the_architecture_lists_every_module():
    """docs/architecture.md's tree names every module and data file of the package, each in its folder."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    tree = text.split("```")[1].splitlines()
    listed, folders = set(), []
    for line in tree[1:]:
        indent = len(line) - len(line.lstrip())
        first = line.strip().split()[0] if line.strip() else ""
        names = [n.strip(",") for n in line.strip().split(", ")] if "," in first else [first]
        names = [n.split()[0] for n in names if n]
        if indent % 2 or not names or not all(n.endswith(("/", ".py", ".npz", ".json", ".safetensors", ".yaml"))
                                              for n in names):
            continue  # a description wrapped onto its own line
        depth = indent // 2 - 1
        folders = folders[:depth]
        for name in names:
            if name.endswith("/"):
                folders.append(name.rstrip("/"))
            else:
                listed.add("/".join([*folders, name]))
    package = ROOT / "src" / "napari_coordgate"
    files = {str(p.relative_to(package)) for p in package.rglob("*")
             if p.suffix in (".py", ".npz", ".json", ".safetensors", ".yaml") and "__pycache__" not in p.parts
             and p.name != "__init__.py" or p.relative_to(package).as_posix() == "__init__.py"}
    missing = sorted(files - listed)
    assert not missing, f"modules missing from docs/architecture.md's tree: {missing}"
    stale = sorted(name for name in listed - files if not name.endswith("__init__.py"))
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"
