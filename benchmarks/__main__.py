"""``python -m benchmarks``: run every benchmark module (each prints one JSON document)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    for module in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])):
        if module.startswith("_"):
            continue
        print(f"# benchmarks.{module}", file=sys.stderr, flush=True)
        code = importlib.import_module(f"benchmarks.{module}").main([])
        if code:
            return int(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
