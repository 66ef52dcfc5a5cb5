"""Auto-attendants in the plan: every field is validated with file, line and field, menus
nest, and every target is resolved at load."""

from __future__ import annotations

import textwrap

import pytest

from dialplan import (
    AutoAttendant,
    ConfigError,
    ConfigIssue,
    DecisionKind,
    Plan,
    Target,
    load_plan_data,
    parse_yaml_text,
)
from dialplan.model import AttendantMenu, ExternalNumber, MenuCommand

HEAD = """\
customers:
  - id: acme
    sip_domain: acme.example
    default_barring: national
    trunks:
      - {id: carrier, host: 127.0.0.1, port: 5090, trusted: ["127.0.0.1"]}
    sites:
      - code: "01"
        address: {street: Rue A, number: "1", postal_code: "31000", city: Toulouse}
        numbers: ["+33562070400-+33562070499"]
        trunk: carrier
        users:
          - {name: A, number: "+33562070410", pack: calling}
          - {name: B, number: "+33562070411", pack: calling}
        auto_attendants:
          - id: reception
            number: "+33562070400"
            extension: "400"
"""


def _load(extra: str) -> Plan:
    return load_plan_data(parse_yaml_text(textwrap.dedent(HEAD + extra), "aa.yaml"))


def _aa(extra: str) -> AutoAttendant:
    return _load(extra).customers[0].sites[0].auto_attendants[0]


def _issues(extra: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as exc:
        _load(extra)
    return exc.value.issues


def _issue_at(extra: str, marker: str = "# <- x") -> str:
    """The message of the issue on the line marked `marker` (the test fails if none)."""
    text = HEAD + extra
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if marker in ln)
    issues = _issues(extra)
    found = [i for i in issues if i.line == line]
    assert found, [str(i) for i in issues]
    assert all(i.file == "aa.yaml" for i in found)
    return found[0].message


def test_todays_shape_still_loads_with_the_defaults() -> None:
    aa = _aa("""\
            menu: {"1": "501410", "0": "501411"}
            timeout: "501410"
""")
    assert [k for k, _ in aa.menu] == ["1", "0"]
    assert all(isinstance(t, Target) and t.kind is DecisionKind.USER for _, t in aa.menu)
    assert str(aa.timeout_target) == "501410"
    assert (aa.greeting, aa.menu_prompt, aa.retries, aa.dial_by_extension,
            aa.digit_timeout) == (None, None, 3, True, 5.0)


def test_every_new_field_loads() -> None:
    aa = _aa("""\
            greeting: accueil-toulouse
            menu_prompt: menu_2026
            retries: 2
            dial_by_extension: false
            digit_timeout: 2.5
            menu:
              "1": "410"                      # a short extension of the site
              "2": "voicemail:501411"
              "4": "0612345678"               # external, allowed by `national`
              "5": "+33612345678"
              "3":
                greeting: technique
                menu_prompt: technique-menu
                menu:
                  "1": "501411"
                  "*": back
                  "#": repeat
                  "9": {menu: {"1": "411", "*": back}}
              "#": repeat
            timeout: "411"
""")
    assert (aa.greeting, aa.menu_prompt, aa.retries, aa.dial_by_extension,
            aa.digit_timeout) == ("accueil-toulouse", "menu_2026", 2, False, 2.5)
    menu = dict(aa.menu)
    assert [k for k, _ in aa.menu] == ["1", "2", "3", "4", "5", "#"]  # keypad order
    assert str(menu["1"]) == "501410" and str(menu["2"]) == "voicemail:501411"
    assert menu["4"] == ExternalNumber("0612345678", "+33612345678")
    assert menu["5"] == ExternalNumber("+33612345678", "+33612345678")
    assert menu["#"] is MenuCommand.REPEAT
    sub = menu["3"]
    assert isinstance(sub, AttendantMenu)
    assert (sub.greeting, sub.prompt) == ("technique", "technique-menu")
    keys = dict(sub.menu)
    assert str(keys["1"]) == "501411" and keys["*"] is MenuCommand.BACK
    assert keys["#"] is MenuCommand.REPEAT
    deeper = keys["9"]
    assert isinstance(deeper, AttendantMenu) and str(dict(deeper.menu)["1"]) == "501411"
    assert str(aa.timeout_target) == "501411"


@pytest.mark.parametrize(("extra", "words"), [
    ("            greeting: \"../etc/passwd\"  # <- x\n", "no announcement name"),
    ("            menu_prompt: \"a b\"  # <- x\n", "no announcement name"),
    ("            retries: 0  # <- x\n", "between 1 and 10"),
    ("            retries: two  # <- x\n", "must be an integer"),
    ("            dial_by_extension: yes please  # <- x\n", "true or false"),
    ("            digit_timeout: 0  # <- x\n", "seconds between 1 and 60"),
    ("            digit_timeout: 61  # <- x\n", "seconds between 1 and 60"),
    ("            digit_timeout: true  # <- x\n", "seconds between 1 and 60"),
    ("            colour: blue  # <- x\n", "unknown field"),
    ("            menu: {\"10\": \"501410\"}  # <- x\n", "single DTMF digits"),
    ("            menu: {\"1\": \"501499\"}  # <- x\n", "no target '501499'"),
    ("            menu: {\"1\": \"499\"}  # <- x\n", "no extension '499' in site 01"),
    ("            menu: {\"1\": 501410}  # <- x\n", "quoted string"),
    ("            menu: {\"1\": \"voicemail:501499\"}  # <- x\n", "no target"),
    ("            menu: {\"1\": \"hello\"}  # <- x\n", "no target 'hello'"),
    ("            menu: {\"1\": \"+4420\"}  # <- x\n", "no target '+4420'"),
    # the customer's default barring (national) refuses international and premium numbers
    ("            menu: {\"1\": \"+442079460000\"}  # <- x\n", "barred"),
    ("            menu: {\"1\": \"0899123456\"}  # <- x\n", "barred"),
    ("            menu: {\"*\": back}  # <- x\n", "top menu has none"),
    ("            timeout: \"501499\"  # <- x\n", "no target '501499'"),
    ("            timeout: \"+442079460000\"  # <- x\n", "barred"),
], ids=["greeting", "prompt", "retries0", "retries-text", "bool", "timeout0", "timeout61",
        "timeout-bool", "unknown-field", "key", "unknown-number", "unknown-extension",
        "unquoted", "mailbox", "word", "short-external", "international", "premium",
        "back-at-top", "timeout-target", "timeout-barred"])
def test_bad_fields_are_reported_with_their_line(extra: str, words: str) -> None:
    assert words in _issue_at(extra)


def test_errors_inside_a_submenu_name_their_line() -> None:
    extra = """\
            menu:
              "3":
                greeting: "bad name"          # <- g
                shape: round                  # <- f
                menu:
                  "1": "501499"               # <- t
                  "x": "501410"               # <- k
"""
    assert "no announcement name" in _issue_at(extra, "# <- g")
    assert "unknown field" in _issue_at(extra, "# <- f")
    assert "no target '501499'" in _issue_at(extra, "# <- t")
    assert "single DTMF digits" in _issue_at(extra, "# <- k")


def test_a_submenu_needs_keys() -> None:
    extra = """\
            menu:
              "3": {greeting: technique}      # <- x
"""
    assert "needs its own `menu:`" in _issue_at(extra)


def test_menus_nest_but_not_forever() -> None:
    # seven levels below the top load; the eighth is refused (a runaway generator, a typo)
    def nested(levels: int, indent: int) -> str:
        pad = " " * indent
        if levels == 0:
            return f'{pad}"1": "501410"\n'
        return f'{pad}"1":\n{pad}  menu:\n' + nested(levels - 1, indent + 4)

    ok = _aa("            menu:\n" + nested(7, 14))
    depth, menu = 0, dict(ok.menu)["1"]
    while isinstance(menu, AttendantMenu):
        depth, menu = depth + 1, dict(menu.menu)["1"]
    assert depth == 7 and str(menu) == "501410"
    issues = _issues("            menu:\n" + nested(8, 14))
    assert any("nest at most" in i.message for i in issues), [str(i) for i in issues]


def test_a_key_may_reach_a_target_of_another_site() -> None:
    text = HEAD.replace("        users:\n", "        users:\n", 1) + """\
            menu: {"2": "502411"}
      - code: "02"
        address: {street: Rue B, number: "2", postal_code: "35000", city: Rennes}
        numbers: ["+33223280400-+33223280499"]
        trunk: carrier
        users:
          - {name: C, number: "+33223280411", pack: calling}
"""
    plan = load_plan_data(parse_yaml_text(text, "aa.yaml"))
    aa = plan.customers[0].sites[0].auto_attendants[0]
    assert str(dict(aa.menu)["2"]) == "502411"
