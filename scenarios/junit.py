"""JUnit XML for CI: one testsuite per engine run, one testcase per scenario."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .runner import ScenarioResult


def write_junit(path: str | Path, results: list[ScenarioResult], engine: str,
                errors: tuple[tuple[str, str], ...] = ()) -> None:
    """`errors` are files that could not be loaded: (file, message)."""
    failures = sum(1 for r in results if not r.passed)
    suite = ET.Element("testsuite", name=f"scenarios.{engine}",
                       tests=str(len(results) + len(errors)),
                       failures=str(failures), errors=str(len(errors)),
                       time=f"{sum(r.seconds for r in results):.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"scenarios.{engine}", name=r.name,
                             file=r.file, time=f"{r.seconds:.3f}")
        if not r.passed:
            step = r.failed_step
            msg = step.message if step is not None else r.failure.split("\n", 1)[0]
            fail = ET.SubElement(case, "failure", message=msg)
            fail.text = r.failure
    for file, message in errors:
        case = ET.SubElement(suite, "testcase", classname=f"scenarios.{engine}", name=file,
                             file=file, time="0")
        err = ET.SubElement(case, "error", message=message.split("\n", 1)[0])
        err.text = message
    ET.indent(suite)
    Path(path).write_bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))
