"""Benchmark: how fast the embedded phantom dataset is built (goal: 40 subjects, 64 px, < 30 s).

Measured side by side in one run: all cores vs one worker process, so the parallel speedup
is a ratio taken under the same machine load. Prints JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def _build(out: Path, subjects: int, size: int, workers: int) -> float:
    from mrigan_tf.data.phantom import PhantomConfig, load_mni152, write_phantom

    load_mni152.cache_clear()   # include loading the template, as a user's first run does
    t0 = time.perf_counter()
    write_phantom(out, PhantomConfig(subjects=subjects, size=size, seed=0), workers=workers,
                  progress=False)
    return time.perf_counter() - t0


def main(subjects: int = 40, size: int = 64) -> dict:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        parallel = _build(Path(tmp) / "parallel", subjects, size, workers=cores)
        serial = _build(Path(tmp) / "serial", subjects, size, workers=1)
        identical = ((Path(tmp) / "parallel" / "dataset.npz").read_bytes()
                     == (Path(tmp) / "serial" / "dataset.npz").read_bytes())
    return {
        "benchmark": "phantom_build",
        "subjects": subjects,
        "size": size,
        "cores": cores,
        "seconds_all_cores": round(parallel, 2),
        "seconds_one_worker": round(serial, 2),
        "subjects_per_s_all_cores": round(subjects / parallel, 2),
        "parallel_speedup": round(serial / parallel, 2),
        "goal_seconds": 30.0,
        "goal_met": parallel < 30.0,
        "byte_identical_across_worker_counts": identical,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
