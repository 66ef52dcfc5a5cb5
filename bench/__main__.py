"""`make bench`: run every benchmark and print its figures."""

from __future__ import annotations

import importlib
import sys
import traceback

BENCHES = ["bench.bench_options", "bench.bench_register", "bench.bench_calls",
           "bench.bench_dialplan", "bench.bench_media", "bench.bench_rating",
           "bench.bench_connections", "bench.bench_subscriptions", "bench.bench_queues",
           "bench.bench_conference", "bench.bench_webrtc",
           "bench.bench_cluster",
           # issue 21: cost per operation across load, and the shared SIPp scenarios
           "bench.bench_levels", "bench.bench_sipp",
           # issue 21: what a wake-up costs here, for Kamailio and a minimal responder
           "bench.bench_flatness",
           # issue 21: the pure-Python parser and transaction layer, before/after
           "bench.bench_parser"]


def main() -> int:
    names = sys.argv[1:] or BENCHES
    failed = 0
    for name in names:
        if not name.startswith("bench."):
            name = "bench." + name
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            sys.stdout.write(f"\n== {name}: not available ({exc})\n")
            continue
        try:
            module.main()
        except Exception:
            failed += 1
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
