"""`make bench`: run every benchmark in this folder, each in its own process, and print JSON.

Each benchmark measures its comparisons side by side inside one run (the machine is shared
and noisy, so only ratios taken together mean much). Run one alone with
`python benchmarks/NAME.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    results, failed = [], []
    for script in sorted(HERE.glob("*.py")):
        if script.name == Path(__file__).name:
            continue
        print(f"running {script.name} ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        if proc.returncode != 0:
            failed.append(script.name)
            print(proc.stderr[-3000:], file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout))
    print(json.dumps(results, indent=2))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
