"""Scripted call scenarios for testers (issue 8).

A scenario file (YAML) names phones and the steps they take; the runner plays it against a
switch with one of two engines: our own user agent on the switch's SIP stack (`own`), or
PJSIP through pjsua2 (`pjsua2`). See `scenarios/model.py` for the format.
"""

from .model import Phone, PhoneKind, Scenario, Step, StepKind
from .parse import ScenarioFileError, load_scenario

__all__ = ["Phone", "PhoneKind", "Scenario", "ScenarioFileError", "Step", "StepKind",
           "load_scenario"]
