"""Dialplan benchmark: load a generated plan of 100 sites x 1,000 users, time routing.

Targets (issue): one routing decision < 20 us; load < 5 s. Figures are printed, never
asserted (DESIGN, Testing).

    python -m bench.bench_dialplan            # or through `make bench`
"""

from __future__ import annotations

import gc
import hashlib
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime

from dialplan import CallContext, Plan, load_plan, route
from dialplan.numbers import classify_external

HA1_MD5 = hashlib.md5(b"bench").hexdigest()
HA1_SHA = hashlib.sha256(b"bench").hexdigest()


def generate_plan_text(sites: int = 100, users: int = 1000) -> str:
    """One customer, `sites` sites; site s owns the block +33562{s:02d}2000-2999, so the 4-digit
    extensions (2000-2999) collide with no emergency or service number."""
    out = [
        "switch: {}",
        "customers:",
        "  - id: bench",
        "    sip_domain: bench.wte.example",
        "    domains: [\"127.0.0.1\"]",
        "    extension_length: 4",
        "    trunks:",
        "      - {id: carrier, host: 127.0.0.1, port: 5090, trusted: [\"127.0.0.1\"]}",
        "    sites:",
    ]
    for s in range(sites):
        base = f"+33562{s:02d}2"
        out += [
            f"      - code: \"{s:02d}\"",
            f"        name: Site {s:02d}",
            "        address: {street: Rue X, number: \"1\", postal_code: \"31000\", city: Toulouse}",
            f"        numbers: [\"{base}000-{base}999\"]",
            "        trunk: carrier",
            "        short_dialing: true",
            "        users:",
        ]
        packs = ("calling", "suite", "workspace")
        for u in range(users):
            out += [
                f"          - name: User {s:02d}-{u:03d}",
                f"            number: \"{base}{u:03d}\"",
                f"            pack: {packs[u % 3]}",
                f"            sip: {{ha1_md5: \"{HA1_MD5}\", ha1_sha256: \"{HA1_SHA}\"}}",
            ]
    return "\n".join(out) + "\n"


def _per_call(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(wall us, CPU us) per call over n calls."""
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    w1, c1 = time.perf_counter(), time.process_time()
    return (w1 - w0) / n * 1e6, (c1 - c0) / n * 1e6


def _bench_routes(plan: Plan, n: int) -> list[tuple[str, float, float]]:
    caller = plan.user_by_full_number("5012410")
    trunk = plan.trunk_for_address("127.0.0.1", 5090)
    assert caller is not None and trunk is not None
    at = datetime(2026, 12, 21, 10, 0)
    cases = [
        ("full internal number 5992999", "5992999", caller, None),
        ("short extension 2411", "2411", caller, None),
        ("own public number 0562992999 (on-net)", "0562992999", caller, None),
        ("external national 0612345678 (warm)", "0612345678", caller, None),
        ("external sip:+44...;user=phone (warm)", "sip:+442079460958@h;user=phone", caller, None),
        ("emergency sip:112@host;user=phone", "sip:112@h;user=phone", caller, None),
        ("feature code *43", "*43", caller, None),
        ("inbound from trunk +33562502500", "+33562502500", None, trunk),
    ]
    rows = []
    for label, dialed, user, tr in cases:
        ctx = CallContext(caller=user, caller_trunk=tr, dialed=dialed, at=at)
        route(plan, ctx)  # warm the classification cache once, as in service
        wall, cpu = _per_call(lambda ctx=ctx: route(plan, ctx), n)
        rows.append((label, wall, cpu))
    # Cold: every external number different, so phonenumbers runs each time.
    classify_external.cache_clear()
    numbers = iter([f"06{i:08d}" for i in range(n + 1)])
    wall, cpu = _per_call(
        lambda: route(plan, CallContext(caller, None, next(numbers), at)), n
    )
    rows.append(("external national, all different (cold)", wall, cpu))
    return rows


def main(sites: int = 100, users: int = 1000, n: int = 20000) -> None:
    text = generate_plan_text(sites, users)
    fd, path = tempfile.mkstemp(suffix=".yaml", prefix="bench-dialplan-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    try:
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        plan = load_plan(path)
        load_wall, load_cpu = time.perf_counter() - w0, time.process_time() - c0
        del plan
        gc.collect()
        tracemalloc.start()
        plan = load_plan(path)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        os.unlink(path)
    print(f"dialplan: {sites} sites x {users} users = {sites * users} users, "
          f"YAML {len(text) / 1e6:.1f} MB")
    print(f"  load: {load_wall:.2f} s wall, {load_cpu:.2f} s CPU (target < 5 s)")
    print(f"  load memory (tracemalloc): {current / 2**20:.0f} MiB retained, "
          f"{peak / 2**20:.0f} MiB peak")
    print(f"  route, per decision over {n} calls (target < 20 us):")
    for label, wall, cpu in _bench_routes(plan, n):
        print(f"    {label:<44} {wall:7.2f} us wall {cpu:7.2f} us CPU")


if __name__ == "__main__":
    main()
