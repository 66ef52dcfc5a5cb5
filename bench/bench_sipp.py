"""The shared SIPp scenarios (../shared/bench/sipp/) against `wte serve` (issue 21).

SIPp is another load generator than the project's own (bench/loadgen*.py): the figures it
gives for OPTIONS, REGISTER + digest and calls should agree with bench_levels within 20 %.
The switch runs pinned to core 0 and SIPp to core 1; CPU per operation is the switch
process's CPU time over the run divided by SIPp's successful "calls" (one OPTIONS, one full
registration 401 + 200, one call INVITE..BYE).

Calls: a SIPp UAS registers one callee (reg_auth.xml, one-line injection file) from the port
it then answers on (uas_call.xml); the SIPp UAC (uac_call.xml) sends from 127.0.0.1:9, the
plan's trusted carrier trunk, to that callee's public number, so no 407 round is needed.

Held calls: the same call with a pause between the ACK and the BYE (uac_call.xml copied with
one `<pause>` added), 2,000 calls started at 200/s and all up at once, as the anchors' "2,000
calls held" row. RSS growth and CPU are read while every call is up. The switch's heap is
warm here (the runs above grew it), unlike bench_calls, whose held run starts from a fresh
heap: the two figures bound the memory per held call from below and from above.

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
from bench.common import REPO, bench_switch, process_cpu_seconds, report, rss_bytes

SCENARIOS = Path(os.environ.get("BENCH_SIPP_SCENARIOS", REPO.parent / "shared" / "bench" / "sipp"))
CARRIER_PORT = 9  # the plan's trusted trunk (bench_register.plan_text)
CALLEE_SITE, CALLEE = 1, 0  # site 01, user 0: public number +33562012000
CALLEE_NUMBER = f"+33562{CALLEE_SITE:02d}2{CALLEE:03d}"

# (label, rate per second, operations, max in progress); 0 = as fast as SIPp goes
OPTIONS_RUNS = [("at 100/s", 100, 500, 64), ("highest", 20_000, 20_000, 64)]
REGISTER_RUNS = [("at 100/s", 100, 500, 100), ("highest", 5_000, 6_000, 100)]
CALLS_RUNS = [("at 100/s", 100, 500, 300), ("highest", 1_000, 3_000, 60)]
HELD_CALLS = int(os.environ.get("BENCH_SIPP_HELD", "2000"))
HELD_RATE = 200.0
HELD_PAUSE_S = 30.0  # long enough to read a settled figure once the last call is up


def sipp_binary() -> str | None:
    given = os.environ.get("SIPP")
    if given:
        return given if Path(given).exists() else None
    return shutil.which("sipp")


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sipp_command(sipp: str, target: str, scenario: str, *, port: int, rate: float,
                  calls: int, limit: int, timeout: float, stats: Path,
                  extra: list[str] | None = None) -> list[str]:
    """SIPp on core 1, every address on loopback, bounded by -m and -timeout."""
    cmd = ["taskset", "-c", "1", sipp, target, "-sf", scenario,
           "-i", "127.0.0.1", "-p", str(port), "-ci", "127.0.0.1", "-cp", str(_free_port()),
           "-mi", "127.0.0.1", "-mp", str(_free_port()),
           "-m", str(calls), "-l", str(limit), "-r", str(rate), "-rp", "1000",
           "-timeout", f"{timeout:.0f}s", "-nostdin", "-trace_stat", "-stf", str(stats),
           "-fd", "1", *(extra or [])]
    return cmd if shutil.which("taskset") is not None else cmd[2:]


def _outcome(stats: Path) -> tuple[int, int]:
    """(successful, failed) calls from the last line of SIPp's statistics file."""
    if not stats.exists():
        return 0, 0
    lines = [ln for ln in stats.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) < 2:
        return 0, 0
    row = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
    return (int(row.get("SuccessfulCall(C)", "0") or 0),
            int(row.get("FailedCall(C)", "0") or 0))


def _sipp(sipp: str, target: str, scenario: str, *, port: int, rate: float, calls: int,
          limit: int, timeout: float, extra: list[str] | None = None,
          workdir: Path) -> tuple[int, int, float, str]:
    """Run SIPp to completion: (successful, failed, elapsed seconds, tail of its output)."""
    stats = workdir / f"{scenario}-{port}.csv"
    cmd = _sipp_command(sipp, target, str(SCENARIOS / scenario), port=port, rate=rate,
                        calls=calls, limit=limit, timeout=timeout, stats=stats, extra=extra)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                          timeout=timeout + 30, check=False)
    elapsed = time.perf_counter() - t0
    ok, failed = _outcome(stats)
    tail = (proc.stdout + proc.stderr)[-300:]
    return ok, failed, elapsed, tail


def _row(label: str, ok: int, failed: int, elapsed: float, cpu: float) -> tuple[str, str]:
    per = cpu / max(ok, 1)
    unit = f"{per * 1e3:.2f} ms" if per >= 1e-3 else f"{per * 1e6:.0f} us"
    return (label, f"{ok:,} ok, {failed:,} failed, {ok / elapsed if elapsed else 0:,.0f}/s, "
                   f"switch CPU {unit} per operation")


def _hold_scenario(workdir: Path) -> str:
    """uac_call.xml with a pause before the BYE: a copy in the run's own directory."""
    text = (SCENARIOS / "uac_call.xml").read_text(encoding="iso-8859-1")
    marker = '<send retrans="500" start_txn="bye">'
    if marker not in text:
        raise RuntimeError(f"no BYE step to pause before in {SCENARIOS / 'uac_call.xml'}")
    pause = f'<pause milliseconds="{HELD_PAUSE_S * 1000:.0f}"/>\n  '
    path = workdir / "uac_call_held.xml"
    path.write_text(text.replace(marker, pause + marker, 1), encoding="iso-8859-1")
    return str(path)


def _held(sipp: str, target: str, pid: int, workdir: Path) -> list[tuple[str, str]]:
    """Start HELD_CALLS calls that pause before their BYE; read the switch while all are up."""
    scenario = _hold_scenario(workdir)
    ramp_s = HELD_CALLS / HELD_RATE
    stats = workdir / "held.csv"
    cmd = _sipp_command(sipp, target, scenario, port=CARRIER_PORT, rate=HELD_RATE,
                        calls=HELD_CALLS, limit=HELD_CALLS,
                        timeout=ramp_s + HELD_PAUSE_S + 60, stats=stats,
                        extra=["-s", CALLEE_NUMBER])
    # the earlier runs' transactions end 64*T1 = 32 s after them (RFC 6026 Timers L and
    # M; Timer J for their BYEs): that work must pass before the figure while held is read
    time.sleep(35.0)
    rss0 = rss_bytes(pid)
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(ramp_s + 5.0)  # every call up (the last one answered)
        cpu0, t0 = process_cpu_seconds(pid), time.monotonic()
        time.sleep(10.0)
        cpu_held = process_cpu_seconds(pid) - cpu0
        held_s = time.monotonic() - t0
        grown = rss_bytes(pid) - rss0
        proc.wait(ramp_s + HELD_PAUSE_S + 90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    ok, failed = _outcome(stats)
    return [(f"{HELD_CALLS:,} calls held ({HELD_RATE:.0f}/s, {HELD_PAUSE_S:.0f} s each)",
             f"{ok:,} ok, {failed:,} failed; switch RSS +{grown / 2**20:.1f} MiB from a warm "
             f"heap = {grown / max(HELD_CALLS, 1) / 1024:.1f} KB per held call; CPU while "
             f"all are up {100 * cpu_held / held_s:.2f} % of a core "
             "(anchors: sippy 2.5 16.3 KB and 1.4 %)")]


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
            if HELD_CALLS:
                rows.extend(_held(sipp, target, pid, work))
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
