"""Typed field reading over a YamlSource that records every problem instead of stopping.

Validation reports every error at once (one line per error, with file, line and field), so
each accessor returns a usable default after recording an issue, and the loader goes on.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .yamlsource import ConfigIssue, PathKey, YamlSource

E = TypeVar("E")


class Reader:
    def __init__(self, src: YamlSource) -> None:
        self.src = src
        self.issues: list[ConfigIssue] = []

    def err(self, path: PathKey, message: str) -> None:
        self.issues.append(self.src.issue(path, message))

    def mapping(self, value: Any, path: PathKey, allowed: frozenset[str] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"must be a mapping, not {_kind(value)}")
            return {}
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.err((*path, key), f"unknown field (expected one of: {', '.join(sorted(allowed))})")
        return value

    def seq(self, m: dict[str, Any], path: PathKey, key: str) -> list[Any]:
        v = m.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            self.err((*path, key), f"must be a list, not {_kind(v)}")
            return []
        return v

    def text(
        self, m: dict[str, Any], path: PathKey, key: str, *, required: bool = False,
        default: str | None = None,
    ) -> str | None:
        v = m.get(key)
        if v is None:
            if required:
                self.err((*path, key) if key in m else path, f"missing required field {key!r}")
            return default
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            self.err((*path, key), f"must be a string, not {_kind(v)}")
            return default
        if not isinstance(v, str):
            # YAML reads 01 as 1 and +33562070410 as 33562070410: digits must be quoted.
            self.err((*path, key), f"must be a quoted string (YAML read {v!r} as a number)")
            return default
        if not v.strip():
            self.err((*path, key), "must not be empty")
            return default
        return v.strip()

    def integer(
        self, m: dict[str, Any], path: PathKey, key: str, default: int, lo: int, hi: int
    ) -> int:
        v = m.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            self.err((*path, key), f"must be an integer, not {_kind(v)}")
            return default
        if not lo <= v <= hi:
            self.err((*path, key), f"must be between {lo} and {hi}, not {v}")
            return default
        return v

    def boolean(self, m: dict[str, Any], path: PathKey, key: str, default: bool) -> bool:
        v = m.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            self.err((*path, key), f"must be true or false, not {v!r}")
            return default
        return v

    def choice(
        self, m: dict[str, Any], path: PathKey, key: str, enum: type[E], default: E | None,
        *, required: bool = False,
    ) -> E | None:
        raw = self.text(m, path, key, required=required)
        if raw is None:
            return default
        try:
            return enum(raw.lower())  # type: ignore[call-arg]
        except ValueError:
            values = ", ".join(str(x.value) for x in enum)  # type: ignore[attr-defined]
            self.err((*path, key), f"unknown value {raw!r} (expected one of: {values})")
            return default

    def text_list(self, m: dict[str, Any], path: PathKey, key: str) -> list[tuple[str, PathKey]]:
        out: list[tuple[str, PathKey]] = []
        for i, item in enumerate(self.seq(m, path, key)):
            p = (*path, key, i)
            if isinstance(item, str) and item.strip():
                out.append((item.strip(), p))
            else:
                self.err(p, f"must be a quoted string, not {_kind(item)} {item!r}")
        return out


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return "a string"
