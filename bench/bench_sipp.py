"""The shared SIPp scenarios (../shared/bench/sipp/) against `wte serve` (issue 21).

SIPp is another load generator than the project's own (bench/loadgen*.py): the figures it
gives for OPTIONS, REGISTER + digest and calls should agree with bench_levels within 20 %.
The switch runs pinned to core 0 and SIPp to core 1; CPU per operation is the switch
process's CPU time over the run divided by SIPp's successful "calls" (one OPTIONS, one full
registration 401 + 200, one call INVITE..BYE).

Calls: a SIPp UAS registers one callee (reg_auth.xml, one-line injection file) from the port
it then answers on (uas_call.xml); the SIPp UAC (uac_call.xml) sends from 127.0.0.1:9, the
plan's trusted carrier trunk, to that callee's public number, so no 407 round is needed.

Skipped with a message when no `sipp` binary is found (`$SIPP`, else PATH; Debian:
`apt-get install sip-tester`). Every run is bounded by -m and -timeout.

    python -m bench.bench_sipp          # or through `make bench`
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.bench_register import REALM, USERS_PER_SITE, password_of, site_users, write_plan
from bench.common import REPO, bench_switch, process_cpu_seconds, report

SCENARIOS = Path(os.environ.get("BENCH_SIPP_SCENARIOS", REPO.parent / "shared" / "bench" / "sipp"))
CARRIER_PORT = 9  # the plan's trusted trunk (bench_register.plan_text)
CALLEE_SITE, CALLEE = 1, 0  # site 01, user 0: public number +33562012000
CALLEE_NUMBER = f"+33562{CALLEE_SITE:02d}2{CALLEE:03d}"

# (label, rate per second, operations, max in progress); 0 = as fast as SIPp goes
OPTIONS_RUNS = [("at 100/s", 100, 500, 64), ("highest", 20_000, 20_000, 64)]
REGISTER_RUNS = [("at 100/s", 100, 500, 100), ("highest", 5_000, 6_000, 100)]
CALLS_RUNS = [("at 100/s", 100, 500, 300), ("highest", 1_000, 3_000, 60)]


def sipp_binary() -> str | None:
    given = os.environ.get("SIPP")
    if given:
        return given if Path(given).exists() else None
    return shutil.which("sipp")


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sipp(sipp: str, target: str, scenario: str, *, port: int, rate: float, calls: int,
          limit: int, timeout: float, extra: list[str] | None = None,
          workdir: Path) -> tuple[int, int, float, str]:
    """Run SIPp to completion: (successful, failed, elapsed seconds, tail of its output)."""
    stats = workdir / f"{scenario}-{port}.csv"
    cmd = ["taskset", "-c", "1", sipp, target, "-sf", str(SCENARIOS / scenario),
           "-i", "127.0.0.1", "-p", str(port), "-ci", "127.0.0.1", "-cp", str(_free_port()),
           "-mi", "127.0.0.1", "-mp", str(_free_port()),
           "-m", str(calls), "-l", str(limit), "-r", str(rate), "-rp", "1000",
           "-timeout", f"{timeout:.0f}s", "-nostdin", "-trace_stat", "-stf", str(stats),
           "-fd", "1", *(extra or [])]
    if shutil.which("taskset") is None:
        cmd = cmd[2:]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                          timeout=timeout + 30, check=False)
    elapsed = time.perf_counter() - t0
    ok = failed = 0
    if stats.exists():
        lines = [ln for ln in stats.read_text(errors="replace").splitlines() if ln.strip()]
        if len(lines) >= 2:
            head = lines[0].split(";")
            last = lines[-1].split(";")
            row = dict(zip(head, last, strict=False))
            ok = int(row.get("SuccessfulCall(C)", "0") or 0)
            failed = int(row.get("FailedCall(C)", "0") or 0)
    tail = (proc.stdout + proc.stderr)[-300:]
    return ok, failed, elapsed, tail


def _row(label: str, ok: int, failed: int, elapsed: float, cpu: float) -> tuple[str, str]:
    per = cpu / max(ok, 1)
    unit = f"{per * 1e3:.2f} ms" if per >= 1e-3 else f"{per * 1e6:.0f} us"
    return (label, f"{ok:,} ok, {failed:,} failed, {ok / elapsed if elapsed else 0:,.0f}/s, "
                   f"switch CPU {unit} per operation")


def _users_csv(path: Path, users: list[str]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(f"{u};{password_of(u)}\n" for u in users))
    return path


def main() -> None:
    sipp = sipp_binary()
    if sipp is None:
        report("SIPp scenarios (../shared/bench/sipp)", [
            ("skipped", "no sipp binary (set $SIPP or `apt-get install sip-tester`)")])
        return
    if not (SCENARIOS / "options.xml").exists():
        report("SIPp scenarios", [("skipped", f"no scenarios in {SCENARIOS}")])
        return
    no_limits = ", ".join(f"{k}: 0" for k in (
        "account_concurrent", "account_per_minute", "account_costly_concurrent",
        "account_costly_per_minute", "site_concurrent", "site_per_minute",
        "site_costly_concurrent", "site_costly_per_minute"))
    sites = 8
    config = write_plan([(s, USERS_PER_SITE, "passthrough") for s in range(sites)],
                        "switch: {auth: {max_failures: 1000000}, "
                        f"calls: {{ring_timeout: 10, limits: {{{no_limits}}}}}}}")
    work = Path(tempfile.mkdtemp(prefix="wte-sipp-"))
    switch = bench_switch(config=config)
    pid = switch.proc.pid
    target = f"{switch.host}:{switch.port}"
    rows: list[tuple[str, str]] = []

    def measure(label: str, scenario: str, rate: float, calls: int, limit: int,
                port: int | None = None, extra: list[str] | None = None) -> None:
        cpu0 = process_cpu_seconds(pid)
        ok, failed, elapsed, tail = _sipp(sipp, target, scenario, port=port or _free_port(),
                                          rate=rate, calls=calls, limit=limit,
                                          timeout=max(30.0, calls / rate * 3), extra=extra,
                                          workdir=work)
        time.sleep(0.5)  # deferred work (call records) lands in the figure
        rows.append(_row(label, ok, failed, elapsed, process_cpu_seconds(pid) - cpu0))
        if ok == 0:
            rows.append(("  sipp said", " ".join(tail.split())[-200:]))

    try:
        for label, rate, n, limit in OPTIONS_RUNS:
            measure(f"OPTIONS {label}", "options.xml", rate, n, limit)
        users = [u for s in range(2, sites) for u in site_users(s, USERS_PER_SITE)]
        start = 0
        for label, rate, n, limit in REGISTER_RUNS:
            csv = _users_csv(work / f"users-{start}.csv", users[start:start + n])
            start += n
            measure(f"REGISTER + digest {label}", "reg_auth.xml", rate, n, limit,
                    extra=["-inf", str(csv)])
        uas_port = _free_port()
        callee = site_users(CALLEE_SITE, USERS_PER_SITE)[CALLEE]
        csv = _users_csv(work / "callee.csv", [callee])
        ok, _, _, tail = _sipp(sipp, target, "reg_auth.xml", port=uas_port, rate=1, calls=1,
                               limit=1, timeout=10, extra=["-inf", str(csv)], workdir=work)
        if ok != 1:
            rows.append(("calls", f"skipped: the callee did not register ({tail[-120:]!r})"))
            return
        uas = subprocess.Popen(
            [sipp, "-sf", str(SCENARIOS / "uas_call.xml"), "-i", "127.0.0.1", "-p",
             str(uas_port), "-ci", "127.0.0.1", "-cp", str(_free_port()), "-mi", "127.0.0.1",
             "-mp", str(_free_port()), "-nostdin",
             "-timeout", "300s"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            for label, rate, n, limit in CALLS_RUNS:
                measure(f"calls INVITE..BYE {label}", "uac_call.xml", rate, n, limit,
                        port=CARRIER_PORT, extra=["-s", CALLEE_NUMBER])
        finally:
            uas.terminate()
            try:
                uas.wait(5)
            except subprocess.TimeoutExpired:
                uas.kill()
    finally:
        switch.stop()
        shutil.rmtree(config.parent, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        report(f"SIPp scenarios of {SCENARIOS} against wte serve (SIPp on core 1; "
               f"realm {REALM})", rows)


if __name__ == "__main__":
    main()
