"""`python -m bench [name ...]`: run the benchmarks and print their figures and ratios."""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

from bench import aa, endtoend, gateway, memory, pipeline, recovery, results, sink

BENCHES: dict[str, Callable[[], list[str]]] = {
    "gateway": gateway.run,
    "pipeline": pipeline.run,
    "sink": sink.run,
    "endtoend": endtoend.run,
    "recovery": recovery.run,
    "memory": memory.run,
    "results": results.run,
    "aa": aa.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHES], default=[])
    names = parser.parse_args().names or list(BENCHES)
    print(
        f"hitstream benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, "
        f"{platform.processor() or platform.machine()}"
    )
    for name in names:
        began = time.monotonic()
        print(f"\n== {name} ==")
        for line in BENCHES[name]():
            print(line, flush=True)
        print(f"({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
