"""``python -m benchmarks``: run every benchmark module in this folder, one JSON document each."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

HELPERS = {
    "serving_http",
    "serving_store",
    "serving_quality",
    "chaos_data",
    "chaos_serving",
}  # modules that support a benchmark but are not one


def main() -> int:
    folder = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if m.name not in HELPERS and m.name[0] != "_")
    status = 0
    for name in names:
        print(f"# benchmarks.{name}", file=sys.stderr, flush=True)
        status |= subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *sys.argv[1:]])
    return status


if __name__ == "__main__":
    sys.exit(main())
