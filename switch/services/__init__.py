"""The asyncio adapters of the services, each built with what it uses (see `ports`).

- `ports`: the small Protocols the services depend on, `CallTimers`, and the one `Service`
  lifecycle (`start()`/`stop()`, `Reloadable.reload()` for SIGHUP);
- `plan`: the running dialplan and the SIP accounts it declares;
- `caller`: who is calling (digest for INVITE, unauthenticated emergency, PSAP call-back);
- `applications`: the one runner of call applications (`ivr.application`);
- `dtmf_info`: DTMF in SIP INFO bodies, for the applications.

The call service itself is `switch.calls`; the composition root, `switch.app`, wires them.
"""
