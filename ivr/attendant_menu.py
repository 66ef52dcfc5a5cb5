"""An auto-attendant's menus as plain data, built once from the plan's `AutoAttendant`.

The application (`ivr.auto_attendant`) reads only this: what each key does, which prompts
to play, how many attempts the caller gets, and how to read a number typed by extension.
Building it from the plan here keeps the application independent of the plan's shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from dialplan.model import AttendantMenu, AutoAttendant, MenuChoice, MenuCommand

DEFAULT_GREETING = "aa-welcome"
DEFAULT_MENU_PROMPT = "aa-menu"


class KeyKind(Enum):
    TRANSFER = "transfer"  # send the caller to a target
    SUBMENU = "submenu"
    REPEAT = "repeat"  # play this menu again
    BACK = "back"  # the parent menu


@dataclass(frozen=True, slots=True)
class KeyAction:
    kind: KeyKind
    target: str = ""  # for TRANSFER: what `Transfer` carries (`501410`, `voicemail:...`, `+33...`)
    submenu: Menu | None = None


@dataclass(frozen=True, slots=True)
class Menu:
    """One menu: `name` is its path from the top (`top`, `top/3`, `top/3/1`) for the log."""

    name: str
    greeting: str | None  # played when the caller enters the menu
    prompt: str  # the choices, played on entry (after the greeting) and on every replay
    keys: Mapping[str, KeyAction] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AttendantConfig:
    """Everything an auto-attendant call needs, from its plan entry."""

    id: str
    customer: str | None  # whose announcements the prompts are
    top: Menu
    timeout_target: str | None = None  # after `retries` failed attempts; None: goodbye
    retries: int = 3
    dial_by_extension: bool = True
    digit_timeout: float = 5.0
    # Dial by extension: a short extension (`extension_length` digits, made a full number
    # with `site_prefix`) or a full internal number (`full_number_length` digits starting
    # with `prefix`). `first_digits`: the digits an internal number may start with.
    extension_length: int = 3
    full_number_length: int = 6
    prefix: str = "5"
    site_prefix: str = "501"
    first_digits: frozenset[str] = frozenset()


def config_for(aa: AutoAttendant) -> AttendantConfig:
    """The attendant's menus and settings from its plan entry (site and customer set)."""
    site, customer = aa.site, aa.customer
    top = _menu("top", aa.greeting or DEFAULT_GREETING, aa.menu_prompt or DEFAULT_MENU_PROMPT,
                aa.menu)
    first = {customer.prefix[0]} | {ext[0] for ext in site.by_extension}
    return AttendantConfig(
        id=aa.id, customer=customer.id, top=top,
        timeout_target=str(aa.timeout_target) if aa.timeout_target is not None else None,
        retries=aa.retries, dial_by_extension=aa.dial_by_extension,
        digit_timeout=aa.digit_timeout, extension_length=customer.extension_length,
        full_number_length=customer.full_number_length, prefix=customer.prefix,
        site_prefix=customer.prefix + site.code, first_digits=frozenset(first),
    )


def _menu(name: str, greeting: str | None, prompt: str,
          keys: tuple[tuple[str, MenuChoice], ...]) -> Menu:
    actions: dict[str, KeyAction] = {}
    for key, choice in keys:
        if isinstance(choice, AttendantMenu):
            sub = _menu(f"{name}/{key}", choice.greeting, choice.prompt or DEFAULT_MENU_PROMPT,
                        choice.menu)
            actions[key] = KeyAction(KeyKind.SUBMENU, submenu=sub)
        elif isinstance(choice, MenuCommand):
            actions[key] = KeyAction(KeyKind.REPEAT if choice is MenuCommand.REPEAT
                                     else KeyKind.BACK)
        else:
            actions[key] = KeyAction(KeyKind.TRANSFER, target=str(choice))
    return Menu(name, greeting, prompt, actions)
