"""The pure layers of the service layer stay pure: the call manager (`switch/b2bua`) and
the call applications (`ivr/`) import no I/O, no service adapter and read no clock.

(`tests/test_layering.py` holds the project-wide rules; this adds what issue 11 relies on,
resolving relative imports too.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

NO_IO = ("asyncio", "socket", "sqlalchemy", "media", "switch.transport", "switch.storage",
         "switch.runtime", "switch.services", "switch.calls", "switch.app", "time")
RULES = {
    "switch/b2bua": NO_IO,
    "ivr": (*NO_IO, "switch", "datetime"),
}


def imports_of(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts)
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


def violations(package_dir: str, forbidden: tuple[str, ...], root: Path = REPO) -> list[str]:
    found = []
    for path in sorted((root / package_dir).rglob("*.py")):
        package = ".".join(path.relative_to(root).parent.parts)
        for name in sorted(imports_of(path, package)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


@pytest.mark.parametrize("package_dir", sorted(RULES))
def test_pure_layers_import_no_io(package_dir: str) -> None:
    assert violations(package_dir, RULES[package_dir]) == []


def test_the_check_catches_a_planted_violation(tmp_path: Path) -> None:
    (tmp_path / "switch" / "b2bua").mkdir(parents=True)
    (tmp_path / "switch" / "b2bua" / "bad.py").write_text(
        "from ..runtime import SipRuntime\nimport time\nfrom .call import Call\n")
    assert violations("switch/b2bua", RULES["switch/b2bua"], tmp_path) == [
        "switch/b2bua/bad.py imports switch.runtime",  # relative, resolved
        "switch/b2bua/bad.py imports time",  # a clock read
    ]
