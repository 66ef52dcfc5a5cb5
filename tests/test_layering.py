"""The import rules of DESIGN.md, checked by walking every module's syntax tree.

Two rules, each a function of a root directory so that the checker itself is tested on a
planted violation (a test of the test, issue 11):

- imports: a package never imports what its layer may not see. Relative imports
  (`from .x import y`, `from .. import z`) are resolved to absolute names first, and
  `from p import q` counts as importing both `p` and `p.q` (q may be a submodule).
- clock reads: a pure layer never reads the clock (`time.time()`, `time.monotonic()`,
  `datetime.now()`, `loop.time()`...); time is passed in as `now` (house habit 2). Known
  exceptions are listed in CLOCK_ALLOWED, each with its reason, instead of weakening the rule.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The service layer and composition root: asyncio adapters that only the runtime wires.
# No pure layer may reach them (issue 11: `switch/b2bua` must stay testable without them).
SERVICE_MODULES = (
    "switch.services", "switch.calls", "switch.app", "switch.registration",
    "switch.runtime", "switch.transfer", "switch.media_service", "switch.emergency_service",
    "switch.cdr_writer", "switch.keepalive", "switch.core_handlers", "switch.call_targets",
    "switch.admin", "switch.__main__", "switch.originate", "switch.inner_call",
)
IO = ("asyncio", "socket", "selectors", "ssl", "sqlalchemy", "aiosqlite", "asyncpg", "alembic",
      "switch.transport", "switch.storage")

DOMAIN = ("dialplan", "emergency", "ivr", "voicemail", "devices", "rating")
FORBIDDEN_FOR_DOMAIN = (*IO, *SERVICE_MODULES, "switch.b2bua", "switch.dialog",
                        "switch.transaction", "media")

# package directory -> import prefixes it must never use (its own package is always allowed)
RULES: dict[str, tuple[str, ...]] = {
    "switch/sip": ("switch", "dialplan", "devices", "media", "emergency", "ivr", "voicemail",
                   "rating", "asyncio", "sqlalchemy", "yaml", "pydantic", "numpy"),
    "switch/transaction": (*IO, *SERVICE_MODULES, "switch.dialog", "switch.b2bua", "dialplan",
                           "devices", "media"),
    "switch/dialog": (*IO, *SERVICE_MODULES, "switch.b2bua", "media"),
    # the pure subscription core (RFC 6665 and its event packages, issue 17)
    "switch/subscription": (*IO, *SERVICE_MODULES, "switch.b2bua", "switch.dialog", "media",
                            "dialplan", "devices"),
    # the pure call manager: SIP, dialogs, transaction events and the domain interfaces
    "switch/b2bua": (*IO, *SERVICE_MODULES, "media"),
    "media": ("switch", "dialplan", "devices", "emergency", "ivr", "voicemail", "rating"),
    **{d: FORBIDDEN_FOR_DOMAIN for d in DOMAIN},
}

# Layers that never read the clock (media's two asyncio adapters excepted).
PURE = ("switch/sip", "switch/transaction", "switch/dialog", "switch/b2bua",
        "switch/subscription", *DOMAIN, "media")
CLOCK_EXEMPT_FILES = frozenset({"media/clock.py", "media/udp.py"})
# Known clock reads in pure layers, "file what" -> why it is tolerated for now (each key
# allows one read, wherever it moves in the file). Each entry is a debt: remove it when the
# code takes `now`; a stale entry (no longer read) fails the test too.
CLOCK_ALLOWED: dict[str, str] = {
    # dialplan/cli.py:101 (at this writing)
    "dialplan/cli.py datetime.now()": "`wte plan explain` is a command-line edge that lives "
                                      "in dialplan/: it reads the clock when --at is not given",
    # emergency/pidf.py:43
    "emergency/pidf.py dt.datetime.now()": "the PIDF-LO timestamp falls back to the wall "
                                           "clock when the caller passes no `now`; the "
                                           "adapters should always pass it",
}

TIME_FUNCS = frozenset({"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
                        "perf_counter_ns", "process_time", "localtime", "gmtime", "ctime"})
DATETIME_FUNCS = frozenset({"now", "utcnow", "today"})
LOOP_CALLS = frozenset({"get_running_loop", "get_event_loop"})


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> set[str]:
    """Every absolute module name `path` imports, relative imports resolved from `root`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module_name(path, root).split(".")
    package = module if path.name == "__init__.py" else module[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = node.level - 1
                if up > len(package):
                    names.add("<beyond the root>." + (node.module or ""))
                    continue
                base = package[:len(package) - up] if up else package
                parts = [*base, *(node.module.split(".") if node.module else [])]
            else:
                parts = (node.module or "").split(".")
            if node.module or node.level == 0:
                names.add(".".join(parts))
            names.update(".".join([*parts, a.name]) for a in node.names if a.name != "*")
    names.discard("")
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _py_files(root: Path, package: str) -> Iterator[Path]:
    yield from sorted((root / package).rglob("*.py"))


def import_violations(root: Path,
                      rules: Mapping[str, tuple[str, ...]] = RULES) -> list[str]:
    """"file imports name (forbidden in package)" for every rule broken under `root`."""
    out: list[str] = []
    for package, forbidden in rules.items():
        own = package.replace("/", ".")
        for path in _py_files(root, package):
            for name in sorted(imports_of(path, root)):
                if _matches(name, own):
                    continue
                for prefix in forbidden:
                    if _matches(name, prefix):
                        out.append(f"{path.relative_to(root)} imports {name} "
                                   f"(forbidden in {package}: {prefix})")
                        break
    return out


def _is_loop(node: ast.expr) -> bool:
    """`loop`, `self._loop`, `asyncio.get_running_loop()` and the like."""
    if isinstance(node, ast.Call):
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        return name in LOOP_CALLS
    name = node.attr if isinstance(node, ast.Attribute) else \
        node.id if isinstance(node, ast.Name) else ""
    return name.lstrip("_").endswith("loop")


def clock_reads(path: Path) -> list[tuple[int, str]]:
    """(line, what) for each clock read in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    time_mods = {"time"}
    datetime_names = {"datetime", "date"}  # classes, or the module `datetime`
    direct: dict[str, str] = {}  # `from time import monotonic as m` -> m: time.monotonic
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "time":
                    time_mods.add(a.asname or "time")
                elif a.name == "datetime":
                    datetime_names.add(a.asname or "datetime")
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for a in node.names:
                if node.module == "time" and a.name in TIME_FUNCS:
                    direct[a.asname or a.name] = f"time.{a.name}"
                elif node.module == "datetime" and a.name in ("datetime", "date"):
                    datetime_names.add(a.asname or a.name)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in direct:
            found.append((node.lineno, f"{direct[f.id]}()"))
        elif isinstance(f, ast.Attribute):
            v = f.value
            if f.attr in TIME_FUNCS and isinstance(v, ast.Name) and v.id in time_mods:
                found.append((node.lineno, f"{v.id}.{f.attr}()"))
            elif f.attr in DATETIME_FUNCS and (
                    (isinstance(v, ast.Name) and v.id in datetime_names)
                    or (isinstance(v, ast.Attribute) and v.attr in ("datetime", "date"))):
                found.append((node.lineno, f"{ast.unparse(v)}.{f.attr}()"))
            elif f.attr == "time" and _is_loop(v):
                found.append((node.lineno, f"{ast.unparse(v)}.time()"))
    return sorted(found)


def clock_violations(root: Path, pure: tuple[str, ...] = PURE,
                     exempt: frozenset[str] = CLOCK_EXEMPT_FILES) -> list[str]:
    """"file:line reads the clock: what" in the pure layers under `root`."""
    out: list[str] = []
    for package in pure:
        for path in _py_files(root, package):
            rel = path.relative_to(root).as_posix()
            if rel in exempt:
                continue
            out.extend(f"{rel}:{line} reads the clock: {what}" for line, what in clock_reads(path))
    return out


def test_import_rules() -> None:
    violations = import_violations(REPO)
    assert not violations, "\n".join(violations)


def _allow_key(violation: str) -> str:
    """"dialplan/cli.py:101 reads the clock: datetime.now()" -> "dialplan/cli.py datetime.now()"."""
    where, what = violation.split(" reads the clock: ")
    return f"{where.rsplit(':', 1)[0]} {what}"


def test_pure_layers_do_not_read_the_clock() -> None:
    found = clock_violations(REPO)
    allowed = dict.fromkeys(CLOCK_ALLOWED, 1)
    unexpected = []
    for v in found:
        key = _allow_key(v)
        if allowed.get(key):
            allowed[key] -= 1
        else:
            unexpected.append(v)
    assert not unexpected, "pass `now` in instead:\n" + "\n".join(unexpected)
    stale = sorted(k for k, left in allowed.items() if left)
    assert not stale, f"allowed clock reads that are gone (remove them): {stale}"


def test_sip_layer_is_stdlib_only() -> None:
    stdlib = sys.stdlib_module_names
    bad = []
    for path in (REPO / "switch" / "sip").rglob("*.py"):
        for name in imports_of(path, REPO):
            top = name.split(".")[0]
            if top not in stdlib and top != "switch":
                bad.append(f"{path.name}: {name}")
    assert not bad, bad


def test_every_ruled_package_exists() -> None:
    """A rule on a renamed or moved package would silently check nothing."""
    missing = [p for p in {*RULES, *PURE} if not any((REPO / p).rglob("*.py"))]
    assert not missing, missing


# -- tests of the test: a planted violation must be reported ---------------------------------

def _plant(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_planted_import_violation_is_reported(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "switch/__init__.py": "",
        "switch/services/__init__.py": "",
        "switch/services/calls.py": "",
        "switch/b2bua/__init__.py": "from . import call\n",
        "switch/b2bua/call.py": (
            "import asyncio\n"
            "from ..sip import parse\n"            # allowed: switch.sip
            "from ..services import calls\n"       # forbidden, relative
            "from .. import app\n"                 # forbidden, relative, a module by name
            "from .effects import Effect\n"),      # its own package
        "ivr/__init__.py": "from switch.calls import CallPump\nfrom . import menu\n",
        "voicemail/__init__.py": "from switch.storage.engine import create_engine\n",
    })
    found = import_violations(root)
    assert "switch/b2bua/call.py imports asyncio (forbidden in switch/b2bua: asyncio)" in found
    assert any(v.startswith("switch/b2bua/call.py imports switch.services") for v in found)
    assert any(v.startswith("switch/b2bua/call.py imports switch.app") for v in found)
    assert any(v.startswith("ivr/__init__.py imports switch.calls") for v in found)
    assert any(v.startswith("voicemail/__init__.py imports switch.storage") for v in found)
    assert not any("switch.sip" in v or "effects" in v or "ivr.menu" in v for v in found), found


def test_relative_imports_resolve_to_absolute_names(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "switch/b2bua/__init__.py": "from .legs import Leg\nfrom .. import dialog\n",
        "switch/b2bua/sub/deep.py": "from ...sip import x\nfrom ..call import Call\n",
    })
    assert imports_of(root / "switch/b2bua/__init__.py", root) >= {
        "switch.b2bua.legs", "switch.b2bua.legs.Leg", "switch.dialog"}
    assert imports_of(root / "switch/b2bua/sub/deep.py", root) >= {
        "switch.sip", "switch.sip.x", "switch.b2bua.call"}


def test_a_planted_clock_read_is_reported(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "ivr/__init__.py": "",
        "ivr/menu.py": (
            "import time\n"
            "import datetime as dt\n"
            "from datetime import datetime\n"
            "from time import monotonic as mono\n"
            "import asyncio\n"
            "def f(now: float, loop: object) -> None:\n"
            "    a = time.time()\n"                          # 7
            "    b = mono()\n"                               # 8
            "    c = datetime.now()\n"                       # 9
            "    d = dt.datetime.utcnow()\n"                 # 10
            "    e = asyncio.get_running_loop().time()\n"    # 11
            "    g = self._loop.time()\n"                    # 12
            "    ok = now + 1\n"
            "    ok2 = time.sleep\n"),
        "media/udp.py": "import time\nx = time.time()\n",   # an exempt adapter
        "media/rtp.py": "import time\nx = time.monotonic()\n",
    })
    found = clock_violations(root, pure=("ivr", "media"))
    assert found == [
        "ivr/menu.py:7 reads the clock: time.time()",
        "ivr/menu.py:8 reads the clock: time.monotonic()",
        "ivr/menu.py:9 reads the clock: datetime.now()",
        "ivr/menu.py:10 reads the clock: dt.datetime.utcnow()",
        "ivr/menu.py:11 reads the clock: asyncio.get_running_loop().time()",
        "ivr/menu.py:12 reads the clock: self._loop.time()",
        "media/rtp.py:2 reads the clock: time.monotonic()",
    ]
