"""`make bench`: every benchmark in turn; each prints its table and writes bench/results/<name>.json."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ["bench.world", "bench.decision_quality", "bench.judge_on_prometheus", "bench.ab_test", "bench.scale"]


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        code = importlib.import_module(name).main()
        print(f"=== {name}: {'ok' if code == 0 else 'goal missed'} in {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"goals missed in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
