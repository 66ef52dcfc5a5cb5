"""The import rules of DESIGN.md, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DOMAIN = ("dialplan", "emergency", "ivr", "voicemail", "devices", "rating")
FORBIDDEN_FOR_DOMAIN = (
    "asyncio", "sqlalchemy", "aiosqlite", "asyncpg", "alembic", "socket",
    "switch.transport", "switch.storage", "switch.runtime", "switch.app", "switch.b2bua",
    "switch.dialog", "switch.transaction", "media",
)

# package -> prefixes it must never import
RULES: dict[str, tuple[str, ...]] = {
    "switch/sip": ("switch.", "dialplan", "devices", "media", "emergency", "ivr", "voicemail",
                   "rating", "asyncio", "sqlalchemy", "yaml", "pydantic", "numpy"),
    "switch/transaction": ("switch.transport", "switch.dialog", "switch.b2bua", "switch.runtime",
                           "switch.storage", "asyncio", "dialplan", "devices", "media"),
    "switch/dialog": ("switch.transport", "switch.b2bua", "switch.runtime", "switch.storage",
                      "asyncio", "media"),
    "media": ("switch", "dialplan", "devices", "emergency", "ivr", "voicemail", "rating"),
    **{d: FORBIDDEN_FOR_DOMAIN for d in DOMAIN},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_import_rules() -> None:
    violations: list[str] = []
    for package, forbidden in RULES.items():
        for path in sorted((REPO / package).rglob("*.py")):
            for name in imports_of(path):
                for prefix in forbidden:
                    stem = prefix.rstrip(".")
                    if name == stem or name.startswith(stem + "."):
                        if package == "switch/sip" and name.startswith("switch.sip"):
                            continue
                        violations.append(f"{path.relative_to(REPO)} imports {name}")
    assert not violations, "\n".join(violations)


def test_sip_layer_is_stdlib_only() -> None:
    import sys

    stdlib = sys.stdlib_module_names
    bad = []
    for path in (REPO / "switch" / "sip").rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top not in stdlib and top != "switch":
                bad.append(f"{path.name}: {name}")
    assert not bad, bad
