"""YAML loading that remembers where every value came from.

Operators edit YAML by hand; an error must name the file, the line and the field. PyYAML's
composer keeps a mark (line, column) on every node, so we walk the node tree ourselves and
build plain Python data beside a map from each value's path to its line.
"""

from __future__ import annotations

from collections.abc import Iterator
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


_STR_TAG = "tag:yaml.org,2002:str"


def _build(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG:
        return node.value  # most values: skip the generic constructor (load time, big plans)
    if isinstance(node, yaml.MappingNode):
        _CONSTRUCTOR.flatten_mapping(node)  # YAML merge keys (<<), as SafeLoader does
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_scalar(_CONSTRUCTOR, key_node)
            key_s = str(key)
            lines[(*path, key_s)] = key_node.start_mark.line + 1
            out[key_s] = _build(value_node, (*path, key_s), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _CONSTRUCTOR.construct_object(node, deep=True)


_CONSTRUCTOR = yaml.SafeLoader("")
# libyaml's parser when PyYAML was built with it: ~10x faster on a 100k-user plan, same
# node marks (line numbers) and the same safe tag resolution.
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Unusual(Exception):
    """Anchors, merge keys, explicit tags, several documents: left to the composer."""


_RESOLVERS = yaml.SafeLoader.yaml_implicit_resolvers


def _plain(value: str) -> Any:
    """Resolve a plain scalar exactly as SafeLoader would (YAML 1.1 implicit tags)."""
    for tag, regexp in _RESOLVERS.get(value[0] if value else "", ()):
        if regexp.match(value):
            if tag == _STR_TAG:
                return value
            node = yaml.ScalarNode(tag, value)
            return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
    return value


def _from_events(text: str) -> tuple[Any, dict[PathKey, int]]:
    """Build data and lines straight from libyaml's events: no node objects, and the slow
    Python resolver only for plain scalars that may be something else than a string. A
    100k-user plan loads several times faster than through compose()."""
    lines: dict[PathKey, int] = {}
    root: Any = None
    docs = 0
    # Frames: [is_mapping, container, path, pending key, next index]
    stack: list[list[Any]] = []
    events: Iterator[Any] = yaml.parse(text, Loader=_COMPOSER)
    for ev in events:
        cls = type(ev)
        if cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
            stack.pop()
            continue
        if cls is yaml.ScalarEvent or cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
            if ev.anchor is not None or (ev.tag is not None and ev.tag != "!"):
                raise _Unusual
            line = ev.start_mark.line + 1
            if stack:
                frame = stack[-1]
                if frame[0]:
                    if frame[3] is None:
                        if cls is not yaml.ScalarEvent or (ev.value == "<<" and ev.implicit[0]):
                            raise _Unusual
                        frame[3] = ev.value
                        lines[(*frame[2], ev.value)] = line
                        continue
                    path = (*frame[2], frame[3])
                else:
                    path = (*frame[2], frame[4])
                    frame[4] += 1
            else:
                path = ()
            lines.setdefault(path, line)
            value: Any
            if cls is yaml.ScalarEvent:
                value = _plain(ev.value) if ev.implicit[0] else ev.value
            else:
                value = {} if cls is yaml.MappingStartEvent else []
            if not stack:
                root = value
            elif stack[-1][0]:
                stack[-1][1][stack[-1][3]] = value
                stack[-1][3] = None
            else:
                stack[-1][1].append(value)
            if cls is not yaml.ScalarEvent:
                stack.append([cls is yaml.MappingStartEvent, value, path, None, 0])
        elif cls is yaml.DocumentStartEvent:
            docs += 1
            if docs > 1:
                raise _Unusual
        elif cls is yaml.AliasEvent:
            raise _Unusual
    return ({} if root is None else root), lines


def parse_yaml_text(text: str, file: str = "<string>") -> YamlSource:
    """Parse YAML text; a syntax error becomes a ConfigError with its line."""
    try:
        try:
            data, lines = _from_events(text)
        except _Unusual:
            node = yaml.compose(text, Loader=_COMPOSER)
            lines = {}
            data = {} if node is None else _build(node, (), lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([ConfigIssue(file, line, "<syntax>", str(exc.problem))]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, 1, "<syntax>", str(exc))]) from None
    return YamlSource(file=file, data=data, lines=lines)


def load_yaml_file(path: str | Path) -> YamlSource:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(p), 0, "<file>", exc.strerror or str(exc))]) from None
    return parse_yaml_text(text, str(p))
