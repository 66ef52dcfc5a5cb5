"""The fast event-based YAML builder agrees with PyYAML's safe loader and the composer."""

from __future__ import annotations

import yaml

from dialplan.yamlsource import _COMPOSER, _build, parse_yaml_text

from .conftest import EXAMPLE

SAMPLES = [
    "d: [yes, 01, 2026-01-01, null, ~, '5', 1.5, '', +33562070410, 010, 0x1f, .inf]\ne:\nf: \"x\"\n",
    "a: &x {b: 1}\nc: *x\n",  # anchors: handled by the composer fallback
    "a: !!str 7\nb: {<<: {c: 1}, d: 2}\n",  # explicit tag and merge key: fallback too
    "- 1\n- [a, {b: [c, d]}]\n- {}\n",
    "",
]


def test_same_data_as_safe_load() -> None:
    for text in [*SAMPLES, EXAMPLE.read_text()]:
        expected = yaml.safe_load(text)
        assert parse_yaml_text(text).data == ({} if expected is None else expected)


def test_same_lines_as_the_composer() -> None:
    for text in [SAMPLES[0], SAMPLES[3], EXAMPLE.read_text()]:
        lines: dict[tuple[str | int, ...], int] = {}
        _build(yaml.compose(text, Loader=_COMPOSER), (), lines)
        assert parse_yaml_text(text).lines == lines
