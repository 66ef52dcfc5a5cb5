"""The e-mail of a voicemail message (issue 13): composed here, sent by stdlib `smtplib`.

Why `smtplib` in a worker thread rather than aiosmtplib: e-mails are rare (one per
message), sent by one background task that no call ever waits for, so a blocking client
off the event loop costs nothing, and the switch needs no new runtime dependency. Every
conversation has a timeout (`voicemail.smtp.timeout`); a failure raises and the outbox
retries later with backoff.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from switch.settings import SmtpSettings


class MailError(Exception):
    """The message could not be handed to the SMTP server (the outbox retries)."""


def compose(*, to: str, sender: str, owner: str, caller: str, caller_name: str | None,
            received_local: datetime, duration: float, urgent: bool, audio: Path,
            message_id: str) -> EmailMessage:
    """A French text e-mail with the message attached as `message-<id>.wav`."""
    who = f"{caller_name} ({caller})" if caller_name else (caller or "un numéro inconnu")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = (f"{'[URGENT] ' if urgent else ''}Nouveau message vocal de {who}")
    msg["X-Wte-Mailbox"] = owner
    msg["X-Wte-Message-Id"] = message_id
    msg.set_content(
        f"Vous avez reçu un message vocal de {who}\n"
        f"le {received_local:%d/%m/%Y à %H:%M}, durée {duration:.0f} s.\n\n"
        "Le message est joint à cet e-mail ; il reste aussi dans votre messagerie (*86).\n")
    msg.add_attachment(audio.read_bytes(), maintype="audio", subtype="wav",
                       filename=f"message-{message_id}.wav")
    return msg


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Blocking: hand `message` to the configured server (run it in a thread)."""
    user = os.environ.get(settings.username_env) if settings.username_env else None
    password = os.environ.get(settings.password_env) if settings.password_env else None
    if (settings.username_env or settings.password_env) and not (user and password):
        raise MailError(f"SMTP credentials missing from the environment "
                        f"({settings.username_env}, {settings.password_env})")
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if user and password:
                smtp.login(user, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}") from exc
