"""Numbers, dates and phone numbers as the shipped French prompts (`prompts/fr/`).

The prompts exist for the digits (`digit-0`..`digit-9`), 10-16 and the tens
(`number-NN`, common.txt), "et" (`and`), and, for voicemail, the months (`month-1`..
`month-12`), "heures" and the words around (voicemail.txt).
"""

from __future__ import annotations

from datetime import datetime

from ivr.application import Prompt


def say_number(n: int) -> tuple[Prompt, ...]:
    """0-59 in French words from the shipped prompts ("vingt et un", "dix-sept")."""
    if n < 0 or n > 59:
        return say_digits(str(abs(n)))
    if n < 10:
        return (Prompt(f"digit-{n}"),)
    if n <= 16:
        return (Prompt(f"number-{n}"),)
    if n < 20:
        return (Prompt("number-10"), Prompt(f"digit-{n - 10}"))
    tens, unit = divmod(n, 10)
    head = Prompt(f"number-{tens * 10}")
    if unit == 0:
        return (head,)
    if unit == 1:
        return (head, Prompt("and"), Prompt("digit-1"))
    return (head, Prompt(f"digit-{unit}"))


def say_digits(number: str) -> tuple[Prompt, ...]:
    """A phone number digit by digit ('+' is not spoken, '*' and '#' are)."""
    names = {"*": "digit-star", "#": "digit-hash"}
    out: list[Prompt] = []
    for c in number:
        if c.isdigit() and c.isascii():
            out.append(Prompt(f"digit-{c}"))
        elif c in names:
            out.append(Prompt(names[c]))
    return tuple(out)


def say_when(at: datetime) -> tuple[Prompt, ...]:
    """"le 3 décembre à 14 heures 5" (the day, the month, the hour and minutes)."""
    out: list[Prompt] = [Prompt("vm-on-day"), *say_number(at.day), Prompt(f"month-{at.month}"),
                         Prompt("vm-at"), *say_number(at.hour), Prompt("vm-hours")]
    if at.minute:
        out.extend(say_number(at.minute))
    return tuple(out)
