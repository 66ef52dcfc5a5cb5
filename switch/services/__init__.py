"""The asyncio adapters of the services, each built with what it uses (see `ports`).

- `ports`: the small Protocols the services depend on, and the `Service` lifecycle;
- `plan`: the running dialplan and the SIP accounts it declares;
- `applications`: the one runner of call applications (`ivr.application`).

The call service itself is `switch.calls`; the composition root, `switch.app`, wires them.
"""
