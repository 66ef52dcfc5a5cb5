"""YAML loading that remembers where every value came from.

Operators edit YAML by hand; an error must name the file, the line and the field. PyYAML's
composer keeps a mark (line, column) on every node, so we walk the node tree ourselves and
build plain Python data beside a map from each value's path to its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a configuration file."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class ConfigError(Exception):
    """A configuration was refused; carries every issue found, each with file, line, field."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass
class YamlSource:
    """Parsed YAML data plus the line (1-based) of every mapping key and sequence item."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int:
        """Line of `path`, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)

    def issue(self, path: PathKey, message: str) -> ConfigIssue:
        dotted = ".".join(str(x) if isinstance(x, str) else f"[{x}]" for x in path)
        dotted = dotted.replace(".[", "[")
        return ConfigIssue(self.file, self.line_of(path), dotted or "<root>", message)


def _build(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_scalar(_CONSTRUCTOR, key_node)  # type: ignore[arg-type]
            key_s = str(key)
            lines[(*path, key_s)] = key_node.start_mark.line + 1
            out[key_s] = _build(value_node, (*path, key_s), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _CONSTRUCTOR.construct_object(node, deep=True)


_CONSTRUCTOR = yaml.SafeLoader("")


def parse_yaml_text(text: str, file: str = "<string>") -> YamlSource:
    """Parse YAML text; a syntax error becomes a ConfigError with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([ConfigIssue(file, line, "<syntax>", str(exc.problem))]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, 1, "<syntax>", str(exc))]) from None
    lines: dict[PathKey, int] = {}
    data = {} if node is None else _build(node, (), lines)
    return YamlSource(file=file, data=data, lines=lines)


def load_yaml_file(path: str | Path) -> YamlSource:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(p), 0, "<file>", exc.strerror or str(exc))]) from None
    return parse_yaml_text(text, str(p))
