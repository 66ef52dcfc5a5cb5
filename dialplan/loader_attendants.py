"""Auto-attendants from YAML: menus (nested to any depth), prompts, retries, dial by extension.

The shape (one site's `auto_attendants:` list; every field but `id` and an extension or
number is optional):

    - id: reception
      number: "+33562070400"
      extension: "400"
      greeting: accueil-toulouse     # a customer announcement; default: shipped aa-welcome
      menu_prompt: menu-toulouse     # default: shipped aa-menu
      retries: 3                     # attempts at the menu before the timeout target
      dial_by_extension: true        # a digit that is no key starts an internal number
      digit_timeout: 5               # seconds to wait for a digit (first and next ones)
      menu:
        "1": "501401"                # a full internal number (user, group, queue, menu)
        "2": "402"                   # a short extension of this site
        "4": "voicemail:501410"      # a mailbox
        "5": "0612345678"            # an external number the customer's barring allows
        "3":                         # a submenu: its own greeting, prompt and keys
          greeting: menu-technique
          menu: {"1": "501412", "*": back, "#": repeat}
        "#": repeat
      timeout: "501410"
      schedule: office
      closed: "voicemail:501410"

Every target is resolved at load (service description 3.4: the attendant's routes are the
customer's own numbers or numbers its barring allows); an unknown number is an error naming
file, line and field, like every other reference in the plan.
"""

from __future__ import annotations

import re
from typing import Any

from .loader_sites import CustomerCtx, _defer_target, _group_common, _schedule_ref, resolve_target
from .model import AttendantMenu, AutoAttendant, ExternalNumber, MenuChoice, MenuCommand, Site
from .numbers import classify_external
from .yamlsource import PathKey

AA_KEYS = frozenset({
    "id", "name", "number", "extension", "menu", "timeout", "schedule", "closed", "greeting",
    "menu_prompt", "retries", "dial_by_extension", "digit_timeout",
})
SUBMENU_KEYS = frozenset({"greeting", "menu_prompt", "menu"})
DTMF_KEYS = "123456789*0#"  # the order menus are kept in (a phone keypad)
MAX_DEPTH = 8  # nested menus; also stops a recursive YAML alias
RETRIES = (1, 10)
DIGIT_TIMEOUT = (1, 60)
# Announcement names (`wte announcements add --name NAME`): file-name safe.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def parse_auto_attendant(ctx: CustomerCtx, site: Site, raw: Any, path: PathKey) -> AutoAttendant | None:
    r = ctx.r
    m = r.mapping(raw, path, AA_KEYS)
    common = _group_common(ctx, site, m, path, "auto-attendant")
    schedule = _schedule_ref(ctx, m, path)
    greeting = announcement(ctx, m, path, "greeting")
    prompt = announcement(ctx, m, path, "menu_prompt")
    retries = r.integer(m, path, "retries", 3, *RETRIES)
    dial = r.boolean(m, path, "dial_by_extension", True)
    digit_timeout = seconds(ctx, m, path, "digit_timeout", 5.0)
    if common is None:
        return None
    gid, name, number, ext, full = common
    aa = AutoAttendant(gid, name, number, ext, full, (), None, schedule, greeting=greeting,
                       menu_prompt=prompt, retries=retries, dial_by_extension=dial,
                       digit_timeout=digit_timeout)
    ctx.paths[id(aa)] = path
    _parse_keys(ctx, site, aa, m, path, depth=0)
    ref = r.text(m, path, "timeout")
    if ref is not None:
        ctx.pending_menu.append((aa, "timeout_target", ref, (*path, "timeout"), site.code))
    _defer_target(ctx, aa, "closed_target", m, path, "closed")
    return aa


def announcement(ctx: CustomerCtx, m: dict[str, Any], path: PathKey, key: str) -> str | None:
    """The name of an announcement (a customer's, added with `wte announcements add`, or a
    shipped prompt): letters, digits, `-` and `_`, at most 64."""
    name = ctx.r.text(m, path, key)
    if name is not None and not _NAME.fullmatch(name):
        ctx.r.err((*path, key), f"{name!r} is no announcement name (letters, digits, - and _, "
                  "at most 64)")
        return None
    return name


def seconds(ctx: CustomerCtx, m: dict[str, Any], path: PathKey, key: str, default: float) -> float:
    v = m.get(key)
    if v is None:
        return default
    lo, hi = DIGIT_TIMEOUT
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        ctx.r.err((*path, key), f"must be a number of seconds between {lo} and {hi}, not {v!r}")
        return default
    return float(v)


def _parse_keys(ctx: CustomerCtx, site: Site, owner: AutoAttendant | AttendantMenu,
                m: dict[str, Any], path: PathKey, depth: int) -> None:
    """The `menu:` of `owner`: submenus and commands now, targets once every number of the
    customer is known (`apply_menu_targets`)."""
    r = ctx.r
    mpath = (*path, "menu")
    menu = r.mapping(m.get("menu"), mpath)
    immediate: list[tuple[str, MenuChoice]] = []
    for key, value in menu.items():
        kpath = (*mpath, key)
        if not isinstance(key, str) or len(key) != 1 or key not in DTMF_KEYS:
            r.err(kpath, "menu keys are single DTMF digits 0-9, * or # (quote them: \"1\")")
            continue
        if isinstance(value, dict):
            if depth + 1 >= MAX_DEPTH:
                r.err(kpath, f"menus nest at most {MAX_DEPTH} deep")
                continue
            sub = r.mapping(value, kpath, SUBMENU_KEYS)
            child = AttendantMenu(greeting=announcement(ctx, sub, kpath, "greeting"),
                                  prompt=announcement(ctx, sub, kpath, "menu_prompt"))
            if "menu" not in sub:
                r.err(kpath, "a submenu needs its own `menu:` of keys")
            _parse_keys(ctx, site, child, sub, kpath, depth + 1)
            immediate.append((key, child))
            continue
        ref = r.text(menu, mpath, key, required=True)
        if ref is None:
            continue
        command = _command(ref)
        if command is MenuCommand.BACK and isinstance(owner, AutoAttendant):
            r.err(kpath, "`back` goes to the parent menu: the top menu has none")
        elif command is not None:
            immediate.append((key, command))
        else:
            ctx.pending_menu.append((owner, key, ref, kpath, site.code))
    object.__setattr__(owner, "menu", _ordered(immediate))


def _command(ref: str) -> MenuCommand | None:
    try:
        return MenuCommand(ref.lower())
    except ValueError:
        return None


def _ordered(entries: list[tuple[str, MenuChoice]]) -> tuple[tuple[str, MenuChoice], ...]:
    return tuple(sorted(entries, key=lambda kv: DTMF_KEYS.index(kv[0])))


def resolve_menu_target(ctx: CustomerCtx, site_code: str, ref: str,
                        path: PathKey) -> MenuChoice | None:
    """A menu's (or the timeout's) target: a full internal number or a short extension of
    the attendant's site, `voicemail:<user>`, or an external number that the customer's
    default barring profile allows (annex 16.1: the customer's rules apply to the caller
    the attendant sends on)."""
    if ref.startswith("voicemail:"):
        return resolve_target(ctx, ref, path)
    digits = ref
    if digits.isdigit() and len(digits) == ctx.extension_length:
        full = ctx.prefix + site_code + digits
        if full in ctx.full_numbers:
            return resolve_target(ctx, full, path)
        ctx.r.err(path, f"no extension {digits!r} in site {site_code} (nor internal number "
                  f"{full})")
        return None
    full_length = len(ctx.prefix) + ctx.site_code_length + ctx.extension_length
    if digits.startswith(ctx.prefix) and len(digits) <= full_length:
        return resolve_target(ctx, digits, path)
    cls = classify_external(digits, ctx.country)
    if cls.error is not None:
        ctx.r.err(path, f"no target {ref!r}: not an internal number, voicemail:<user number>, "
                  f"nor an external number ({cls.error})")
        return None
    barred = ctx.default_profile.refused(cls.categories)
    if barred:
        names = ", ".join(sorted(c.value for c in barred))
        ctx.r.err(path, f"{ref}: {names} calls are barred by the customer's default barring "
                  f"profile {ctx.default_profile.id!r}")
        return None
    return ExternalNumber(ref, cls.e164)


def apply_menu_targets(ctx: CustomerCtx) -> None:
    """Resolve the menus' targets once every internal number of the customer is known."""
    for owner, key, ref, path, site_code in ctx.pending_menu:
        target = resolve_menu_target(ctx, site_code, ref, path)
        if target is None:
            continue
        if key == "timeout_target":
            object.__setattr__(owner, "timeout_target", target)
        else:
            object.__setattr__(owner, "menu", _ordered([*owner.menu, (key, target)]))
