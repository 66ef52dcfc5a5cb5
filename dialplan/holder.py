"""The running plan, swapped atomically on reload (SIGHUP, wired by the switch).

DESIGN "Errors and bad input": bad configuration fails at load with file, line and field,
and the running configuration stays in place.
"""

from __future__ import annotations

from pathlib import Path

from .loader import load_plan
from .model import Plan
from .yamlsource import ConfigError, ConfigIssue


class PlanHolder:
    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self.generation = 0  # bumped on every successful swap

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def current(self) -> Plan:
        return self._plan

    def reload(self, path: str | Path) -> list[ConfigIssue]:
        """Validate `path`; swap only when it has no issue. Returns the issues (empty = swapped)."""
        try:
            new = load_plan(path)
        except ConfigError as exc:
            return list(exc.issues)
        # One reference assignment: a routing call in flight keeps the plan it started with.
        self._plan = new
        self.generation += 1
        return []

    def install(self, plan: Plan) -> None:
        """Swap in a plan validated elsewhere (the admin API's PUT /plan, issue 18)."""
        self._plan = plan
        self.generation += 1
