"""Bindings for the storage tests."""

from __future__ import annotations

from devices.location import Binding, BindingChange, ChangeKind

NOW = 1_800_000_000.0


def binding(i: int, *, aor: str = "acme:501410", expires_at: float = NOW + 3600,
            instance: str | None = None, conn_id: int | None = None,
            path: tuple[str, ...] = ()) -> Binding:
    return Binding(aor, f"sip:{i}@10.0.{i // 250}.{i % 250}:5060", expires_at, 0.5 + (i % 5) / 10,
                   f"call-{i}@phone", i + 1, instance, None, "udp", "203.0.113.9", 40000 + i,
                   conn_id, "Yealink SIP-T46U 108.86.0.20", NOW + i / 1000, path)


def up(b: Binding) -> BindingChange:
    return BindingChange(ChangeKind.UPSERT, b)


def down(b: Binding) -> BindingChange:
    return BindingChange(ChangeKind.DELETE, b)
