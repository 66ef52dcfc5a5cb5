"""Reading scenario files: YAML to the frozen model, every error with file, line and step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dialplan.yamlsource import ConfigError, ConfigIssue, PathKey, YamlSource, load_yaml_file

from .capabilities import engine_issues
from .model import (
    DEFAULT_TIMEOUT,
    EXAMPLE_CARRIER,
    CallState,
    Expectation,
    Match,
    Phone,
    PhoneKind,
    Scenario,
    Step,
    StepKind,
    Where,
)

TRANSPORTS = ("UDP", "TCP", "TLS")
PHONE_KEYS = {"account", "password", "realm", "transport", "kind", "address", "steps"}
DEFAULT_CARRIER = EXAMPLE_CARRIER  # kept for importers; a carrier's address defaults to ""


class ScenarioFileError(Exception):
    """A scenario file is wrong; `issues` name the file, the line and the field or step."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class _Bad(Exception):
    def __init__(self, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def load_scenario(path: str | Path, engine: str | None = None) -> Scenario:
    """Parse one file; raises ScenarioFileError. With `engine` ("own", "pjsua2"), every
    step is also checked against what that engine can play (file, line and step)."""
    try:
        src = load_yaml_file(path)
    except ConfigError as exc:
        raise ScenarioFileError(exc.issues) from None
    try:
        scenario = _scenario(src)
    except _Bad as bad:
        raise ScenarioFileError([src.issue(bad.path, bad.message)]) from None
    if engine is not None:
        issues = engine_issues(scenario, engine)
        if issues:
            raise ScenarioFileError(issues)
    return scenario


def _mapping(value: Any, path: PathKey, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(path, f"{what} must be a mapping")
    return value


def _scenario(src: YamlSource) -> Scenario:
    data = _mapping(src.data, (), "a scenario")
    unknown = set(data) - {"name", "description", "phones", "steps", "tags"}
    if unknown:
        key = sorted(unknown)[0]
        raise _Bad((key,), f"unknown key {key!r} (name, description, phones, steps, tags)")
    phones_raw = _mapping(data.get("phones"), ("phones",), "`phones`")
    if not phones_raw:
        raise _Bad(("phones",), "a scenario needs at least one phone")
    names = set(phones_raw)
    phones = tuple(_phone(src, name, raw, names) for name, raw in phones_raw.items())
    steps: tuple[Step, ...] = ()
    if "steps" in data:
        steps = _steps(src, data["steps"], ("steps",), names, None)
        if any(p.steps for p in phones):
            raise _Bad(("steps",), "use either top-level `steps` or per-phone `steps`, not both")
    elif not any(p.steps for p in phones):
        raise _Bad((), "no steps: give `steps:` or a `steps:` list per phone")
    name = data.get("name") or Path(src.file).stem
    tags = data.get("tags") or []
    if not isinstance(tags, list):
        raise _Bad(("tags",), "`tags` must be a list")
    return Scenario(str(name), src.file, phones, steps, str(data.get("description") or ""),
                    tuple(str(t) for t in tags))


def _phone(src: YamlSource, name: str, raw: Any, names: set[str]) -> Phone:
    path: PathKey = ("phones", name)
    if name == "wait" or name in StepKind._value2member_map_:
        raise _Bad(path, f"{name!r} is a step name and cannot name a phone")
    d = _mapping(raw, path, f"phone {name!r}")
    unknown = set(d) - PHONE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise _Bad((*path, key), f"unknown key {key!r} ({', '.join(sorted(PHONE_KEYS))})")
    kind_s = str(d.get("kind", "desk")).lower()
    try:
        kind = PhoneKind(kind_s)
    except ValueError:
        raise _Bad((*path, "kind"), f"kind {kind_s!r} is not one of "
                   f"{', '.join(k.value for k in PhoneKind)}") from None
    default_transport = "ws" if kind is PhoneKind.WEBRTC else "udp"
    transport = str(d.get("transport", default_transport)).upper()
    if kind is PhoneKind.WEBRTC and transport != "WS":
        raise _Bad((*path, "transport"), "a webrtc phone speaks SIP over WebSocket (ws)")
    if transport not in TRANSPORTS and kind is not PhoneKind.WEBRTC:
        raise _Bad((*path, "transport"), f"transport {transport.lower()!r} is not udp, tcp or tls")
    # a carrier without `address` is the switch's carrier trunk, resolved by the runner
    address = str(d.get("address", ""))
    if kind is PhoneKind.CARRIER:
        host, _, port = address.rpartition(":")
        if "address" in d and (not host or not port.isdigit() or not 0 < int(port) < 65536):
            raise _Bad((*path, "address"), f"address {address!r} is not host:port")
        if transport != "UDP":
            raise _Bad((*path, "transport"), "a carrier speaks UDP")
    elif "account" not in d:
        raise _Bad(path, f"phone {name!r} needs an `account`")
    steps: tuple[Step, ...] = ()
    if "steps" in d:
        steps = _steps(src, d["steps"], (*path, "steps"), names, name)
    return Phone(name, kind, str(d.get("account", "")), str(d.get("password", "")),
                 str(d.get("realm", "*")), transport, address, steps)


def _steps(src: YamlSource, raw: Any, path: PathKey, names: set[str],
           owner: str | None) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Bad(path, "`steps` must be a non-empty list")
    return tuple(_step(src, item, (*path, i), names, owner) for i, item in enumerate(raw))


def _step(src: YamlSource, item: Any, path: PathKey, names: set[str], owner: str | None) -> Step:
    where = Where(src.file, src.line_of(path), int(path[-1]) + 1)
    if owner is not None:
        # per-phone lists: `- dial: 501411`, `- answer`, `- wait: 1`
        phone: str | None = owner
        body: Any = item
        bpath = path
    else:
        d = _mapping(item, path, "a step")
        if len(d) != 1:
            raise _Bad(path, "a step is one `phone: action` (or `wait: seconds`)")
        key, body = next(iter(d.items()))
        if key == "wait":
            phone, body = None, {"wait": body}
        elif key not in names:
            raise _Bad((*path, key), f"unknown phone {key!r} (phones: {', '.join(sorted(names))})")
        else:
            phone = key
        bpath = (*path, key)
    if isinstance(body, str):
        kind_s, arg, timeout = body, None, None
    else:
        b = _mapping(body, bpath, "an action")
        timeout = b.get("timeout")
        rest = {k: v for k, v in b.items() if k != "timeout"}
        if len(rest) != 1:
            raise _Bad(bpath, "an action is one `kind: argument` (plus `timeout`)")
        kind_s, arg = next(iter(rest.items()))
        bpath = (*bpath, kind_s)
    try:
        kind = StepKind(kind_s)
    except ValueError:
        raise _Bad(bpath, f"unknown step {kind_s!r}; steps are: "
                   f"{', '.join(k.value for k in StepKind)}") from None
    if isinstance(arg, dict) and "timeout" in arg:
        timeout = arg.pop("timeout")
    step = Step(kind, phone, where)
    if timeout is not None:
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise _Bad(bpath, f"timeout {timeout!r} must be a positive number of seconds")
        step = replace(step, timeout=float(timeout))
    try:
        return _ARGS[kind](step, arg)
    except _ArgError as exc:
        raise _Bad(bpath, f"{kind.value}: {exc}") from None


class _ArgError(Exception):
    pass


def _none(step: Step, arg: Any) -> Step:
    if arg not in (None, {}, True):
        raise _ArgError(f"takes no argument (got {arg!r})")
    return step


def _int_status(arg: Any, default: int) -> int:
    if arg is None:
        return default
    if isinstance(arg, bool) or not isinstance(arg, int) or not 100 <= arg <= 699:
        raise _ArgError(f"{arg!r} is not a SIP status (100-699)")
    return arg


def _dict(arg: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(arg, dict):
        raise _ArgError(f"expected a mapping with {', '.join(sorted(allowed))}")
    unknown = set(arg) - allowed
    if unknown:
        raise _ArgError(f"unknown key {sorted(unknown)[0]!r} ({', '.join(sorted(allowed))})")
    return arg


def _register(step: Step, arg: Any) -> Step:
    if isinstance(arg, dict):
        arg = _dict(arg, {"expect"}).get("expect")
    return replace(step, status=_int_status(arg, 200))


def _dial(step: Step, arg: Any) -> Step:
    if isinstance(arg, str | int) and not isinstance(arg, bool):
        return replace(step, target=str(arg))
    d = _dict(arg, {"to", "from", "headers"})
    if "to" not in d:
        raise _ArgError("needs `to`")
    hdrs = d.get("headers") or {}
    if not isinstance(hdrs, dict):
        raise _ArgError("`headers` must be a mapping")
    return replace(step, target=str(d["to"]), from_user=str(d.get("from", "")),
                   headers=tuple((str(k), str(v)) for k, v in hdrs.items()))


def _reject(step: Step, arg: Any) -> Step:
    st = _int_status(arg, 486)
    if st < 300:
        raise _ArgError("a rejection status is 300-699")
    return replace(step, status=st)


def _seconds(arg: Any) -> float:
    if isinstance(arg, bool) or not isinstance(arg, int | float) or arg < 0:
        raise _ArgError(f"{arg!r} is not a number of seconds")
    return float(arg)


def _wait(step: Step, arg: Any) -> Step:
    s = _seconds(arg)
    return replace(step, seconds=s, timeout=max(step.timeout, s + 1))


def _expect_status(step: Step, arg: Any) -> Step:
    if arg is None:
        raise _ArgError("needs a status")
    return replace(step, status=_int_status(arg, 0))


def _expect_state(step: Step, arg: Any) -> Step:
    try:
        return replace(step, state=CallState(str(arg)))
    except ValueError:
        raise _ArgError(f"{arg!r} is not one of {', '.join(s.value for s in CallState)}") from None


def _expectation(d: dict[str, Any]) -> Expectation:
    found = [m for m in Match if m.value in d]
    if len(found) != 1:
        raise _ArgError("give exactly one of equals, contains, matches, absent")
    m = found[0]
    if m is Match.MATCHES:
        import re

        try:
            re.compile(str(d[m.value]))
        except re.error as exc:
            raise _ArgError(f"bad regular expression: {exc}") from None
    return Expectation(m, "" if m is Match.ABSENT else str(d[m.value]))


def _expect_header(step: Step, arg: Any) -> Step:
    d = _dict(arg, {"name", "on", *(m.value for m in Match)})
    if "name" not in d:
        raise _ArgError("needs `name` (a header name, or Request-URI)")
    on = str(d.get("on", ""))
    if on not in ("", "invite", "response"):
        raise _ArgError("`on` is invite or response")
    return replace(step, header=str(d["name"]), on=on, expect=_expectation(d))


def _expect_record(step: Step, arg: Any) -> Step:
    d = _dict(arg, {"field", *(m.value for m in Match)})
    if "field" not in d:
        raise _ArgError("needs `field` (a call record field: disposition, status, callee...)")
    return replace(step, field_name=str(d["field"]), expect=_expectation(d))


def _dtmf(step: Step, arg: Any) -> Step:
    if isinstance(arg, str | int) and not isinstance(arg, bool):
        arg = {"digits": str(arg)}
    d = _dict(arg, {"digits", "method"})
    digits = str(d.get("digits", ""))
    if not digits or any(c not in "0123456789*#ABCD" for c in digits.upper()):
        raise _ArgError(f"digits {digits!r}: use 0-9, *, #, A-D")
    method = str(d.get("method", "rfc4733")).lower()
    if method not in ("rfc4733", "inband", "info"):
        raise _ArgError("method is rfc4733, inband or info (SIP INFO dtmf-relay)")
    return replace(step, digits=digits.upper(), method=method)


def _tone(step: Step, arg: Any) -> Step:
    if isinstance(arg, int | float) and not isinstance(arg, bool):
        arg = {"frequency": arg}
    d = _dict(arg, {"frequency", "seconds"})
    freq = d.get("frequency")
    if isinstance(freq, bool) or not isinstance(freq, int | float) or not 50 <= freq <= 3900:
        raise _ArgError("frequency must be 50-3900 Hz")
    return replace(step, frequency=float(freq), seconds=_seconds(d.get("seconds", 1.0)))


def _silence(step: Step, arg: Any) -> Step:
    if isinstance(arg, dict):
        arg = _dict(arg, {"seconds"}).get("seconds", 1.0)
    return replace(step, seconds=_seconds(1.0 if arg is None else arg))


def _wav(step: Step, arg: Any) -> Step:
    if not isinstance(arg, str) or not arg:
        raise _ArgError("needs the path of a WAV file")
    return replace(step, path=arg)


def _transfer(step: Step, arg: Any) -> Step:
    if isinstance(arg, str | int) and not isinstance(arg, bool):
        arg = {"to": str(arg)}
    d = _dict(arg, {"to", "method"})
    method = str(d.get("method", "blind"))
    if method not in ("blind", "attended"):
        raise _ArgError("method is blind or attended")
    return replace(step, target=str(d.get("to", "")), method=method)


def _subscribe(step: Step, arg: Any) -> Step:
    if isinstance(arg, str | int) and not isinstance(arg, bool):
        arg = {"to": str(arg)}
    d = _dict(arg, {"to", "event", "expect"})
    if "to" not in d:
        raise _ArgError("needs `to` (the user to watch)")
    event = str(d.get("event", "dialog"))
    if event not in ("dialog", "presence", "message-summary") and not event.isidentifier():
        raise _ArgError(f"event {event!r} is not an event package name")
    return replace(step, target=str(d["to"]), method=event,
                   status=_int_status(d.get("expect"), 200))


def _expect_notify(step: Step, arg: Any) -> Step:
    d = _dict(arg, {"event", *(m.value for m in Match)})
    expect = _expectation(d)
    if expect.match is Match.ABSENT:
        raise _ArgError("test the body with equals, contains or matches")
    return replace(step, method=str(d.get("event", "")), expect=expect)


# what `settings:` may change (PUT /api/v1/me/settings of the switch's admin API)
SETTINGS_KEYS = frozenset({"forward_always", "forward_busy", "forward_no_answer",
                           "forward_no_answer_seconds", "forward_unreachable", "dnd", "clir",
                           "reject_anonymous", "call_waiting"})


def _settings(step: Step, arg: Any) -> Step:
    import json

    d = _dict(arg, set(SETTINGS_KEYS))
    if not d:
        raise _ArgError(f"give at least one of {', '.join(sorted(SETTINGS_KEYS))}")
    for key, value in d.items():
        if not isinstance(value, bool | str | int | float):
            raise _ArgError(f"{key}: a number, a word or true/false")
    return replace(step, body=json.dumps(d, sort_keys=True))


_ARGS: dict[StepKind, Callable[[Step, Any], Step]] = {
    StepKind.REGISTER: _register,
    StepKind.UNREGISTER: _none,
    StepKind.DIAL: _dial,
    StepKind.EXPECT_RINGING: _none,
    StepKind.ANSWER: _none,
    StepKind.REJECT: _reject,
    StepKind.WAIT: _wait,
    StepKind.HANGUP: _none,
    StepKind.EXPECT_STATUS: _expect_status,
    StepKind.EXPECT_STATE: _expect_state,
    StepKind.EXPECT_HEADER: _expect_header,
    StepKind.EXPECT_RECORD: _expect_record,
    StepKind.SEND_DTMF: _dtmf,
    StepKind.PLAY_TONE: _tone,
    StepKind.PLAY_WAV: _wav,
    StepKind.EXPECT_TONE: _tone,
    StepKind.EXPECT_SILENCE: _silence,
    StepKind.EXPECT_DTMF: _dtmf,
    StepKind.SETTINGS: _settings,
    StepKind.HOLD: _none,
    StepKind.RESUME: _none,
    StepKind.TRANSFER: _transfer,
    StepKind.SUBSCRIBE: _subscribe,
    StepKind.EXPECT_NOTIFY: _expect_notify,
}

__all__ = ["DEFAULT_TIMEOUT", "ScenarioFileError", "load_scenario"]
