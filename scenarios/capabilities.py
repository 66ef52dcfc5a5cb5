"""Which steps each engine can play, checked when a file is loaded (before any phone
registers), so that a scenario never fails halfway for a step its engine cannot do.

The table mirrors what the drivers implement: the own engine is signalling only (it offers
SDP but sends and hears no RTP) and does blind transfer; pjsua2 has media, RFC 4733 DTMF,
blind and attended transfer (REFER with Replaces). Carrier phones are always played by the own engine.
"""

from __future__ import annotations

from collections.abc import Callable

from dialplan.yamlsource import ConfigIssue

from .model import PhoneKind, Scenario, Step, StepKind

ENGINES = ("own", "pjsua2")
CARRIER_ENGINE = "own"
WEBRTC_ENGINE = "webrtc"  # browsers (kind: webrtc) are always played by aiortc (issue 23)

_MEDIA = frozenset({StepKind.SEND_DTMF, StepKind.PLAY_TONE, StepKind.PLAY_WAV,
                    StepKind.EXPECT_TONE, StepKind.EXPECT_SILENCE, StepKind.EXPECT_DTMF})


def _own(step: Step) -> str | None:
    if step.kind in _MEDIA:
        return (f"{step.kind.value} needs media, and the own engine sends and hears no RTP "
                "(use --engine pjsua2)")
    if step.kind is StepKind.TRANSFER and step.method != "blind":
        return "attended transfer (blind transfer is supported)"
    return None


def _pjsua2(step: Step) -> str | None:
    if step.kind in (StepKind.SUBSCRIBE, StepKind.EXPECT_NOTIFY):
        return ("subscriptions (the pjsua2 binding has presence buddies only and hides the "
                "NOTIFY bodies: use --engine own)")
    if step.kind is StepKind.SEND_DTMF and step.method != "rfc4733":
        return f"{step.method} DTMF (RFC 4733 DTMF is supported)"
    return None


def _webrtc(step: Step) -> str | None:
    if step.kind in (StepKind.SUBSCRIBE, StepKind.EXPECT_NOTIFY, StepKind.TRANSFER,
                     StepKind.EXPECT_DTMF, StepKind.PLAY_WAV):
        return f"{step.kind.value} (a browser phone registers, calls, holds, hears and sends tones)"
    if step.kind is StepKind.SEND_DTMF and step.method != "info":
        return "send_dtmf with `method: info` only (aiortc negotiates no telephone-event)"
    return None


_REFUSALS: dict[str, Callable[[Step], str | None]] = {"own": _own, "pjsua2": _pjsua2,
                                                      WEBRTC_ENGINE: _webrtc}


def refusal(engine: str, step: Step) -> str | None:
    """Why `engine` cannot play `step`, or None when it can."""
    check = _REFUSALS.get(engine)
    return check(step) if check is not None else None


def engine_issues(scenario: Scenario, engine: str) -> list[ConfigIssue]:
    """Every step of `scenario` the engine would refuse, with its file, line and step."""
    kinds = {p.name: p.kind for p in scenario.phones}
    steps = scenario.steps or tuple(s for p in scenario.phones for s in p.steps)
    issues: list[ConfigIssue] = []
    for step in steps:
        if step.phone is None:
            continue  # `wait` needs no phone
        kind = kinds.get(step.phone)
        name = (CARRIER_ENGINE if kind is PhoneKind.CARRIER
                else WEBRTC_ENGINE if kind is PhoneKind.WEBRTC else engine)
        why = refusal(name, step)
        if why is not None:
            issues.append(ConfigIssue(step.where.file, step.where.line,
                                      f"step {step.where.index} `{step.describe()}`",
                                      f"not supported by engine {name}: {why}"))
    return sorted(issues, key=lambda i: i.line)
