"""Benchmark: `mrigan-tf prepare brats` on BraTS-sized volumes (goal: 100 subjects < 2 min).

The volumes are generated here: 240 x 240 x 155 voxels, four modalities (int16, gzipped,
as BraTS ships them) and a segmentation with labels 1/2/4. Writing 500 gzipped volumes
would take longer than reading them, so a few distinct subjects are written and the others
are hard links to them under their own names: every subject is still read, decompressed
and sliced on its own. Measured side by side in one run: all cores vs one worker (on a
subset), and the CPU time of the workers over the wall time (about 2.0 = both cores busy).
On a shared, loaded machine the wall time measures the neighbours too, so the CPU seconds
per subject (and the wall time they project on idle cores) are reported as well.
Prints JSON. ``python benchmarks/prepare_brats.py 20`` runs a shorter version.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (240, 240, 155)
MODALITIES = ("t1", "t1ce", "t2", "flair")


def _affine() -> np.ndarray:
    # BraTS files are LPS-oriented at 1 mm; the reader reorients them to RAS.
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, 3] = [0.0, 239.0, 0.0]
    return affine


def _write_subject(folder: Path, sid: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    x, y, z = np.ogrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]]
    c = np.array([120, 120, 75]) + rng.integers(-5, 6, 3)
    r = ((x - c[0]) / 70.0) ** 2 + ((y - c[1]) / 88.0) ** 2 + ((z - c[2]) / 62.0) ** 2
    brain = r <= 1.0
    t = rng.integers(-20, 21, 3)
    d = np.sqrt((x - c[0] - t[0]) ** 2 + (y - c[1] - t[1]) ** 2 + (z - c[2] - t[2]) ** 2)
    seg = np.zeros(SHAPE, np.uint8)
    seg[(d < 25) & brain] = 2
    seg[(d < 14) & brain] = 4
    seg[(d < 9) & brain] = 1
    for k, modality in enumerate(MODALITIES):
        base = 600 + 300 * k + 200 * np.cos(x / 9.0 + k) * np.sin(y / 11.0)
        noise = rng.normal(0, 30, SHAPE).astype(np.float32)
        data = np.where(brain, base * (1.0 - 0.3 * r) + noise + 150 * (seg > 0) * (k - 1.5), 0)
        nib.save(nib.Nifti1Image(np.clip(data, 0, None).astype(np.int16), _affine()),
                 str(folder / f"{sid}_{modality}.nii.gz"))
    nib.save(nib.Nifti1Image(seg, _affine()), str(folder / f"{sid}_seg.nii.gz"))


def make_fake_brats(root: Path, subjects: int, distinct: int = 4) -> None:
    for i in range(distinct):
        _write_subject(root / f"BraTS2021_{i:05d}", f"BraTS2021_{i:05d}", seed=i)
    for i in range(distinct, subjects):
        sid, twin = f"BraTS2021_{i:05d}", f"BraTS2021_{i % distinct:05d}"
        (root / sid).mkdir()
        for part in (*MODALITIES, "seg"):
            os.link(root / twin / f"{twin}_{part}.nii.gz", root / sid / f"{sid}_{part}.nii.gz")


def _timed(src: Path, out: Path, workers: int, limit: int | None, **options) -> dict:
    from mrigan_tf.data.prepare import prepare_dataset

    before_self = resource.getrusage(resource.RUSAGE_SELF)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    report = prepare_dataset("brats", src, out, size=64, workers=workers, limit=limit,
                             progress=False, **options)
    wall = time.perf_counter() - t0
    after_self = resource.getrusage(resource.RUSAGE_SELF)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(a, f) - getattr(b, f) for a, b in ((after_self, before_self),
                                                          (after_children, before_children))
              for f in ("ru_utime", "ru_stime"))
    return {"seconds": round(wall, 2), "subjects": report.num_subjects,
            "slices": report.num_slices, "subjects_per_s": round(report.num_subjects / wall, 3),
            "cpu_seconds_per_wall_second": round(cpu / wall, 2),
            "cpu_seconds_per_subject": round(cpu / report.num_subjects, 3)}


def main(subjects: int = 100, serial_subjects: int = 8) -> dict:
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "BraTS2021_Training_Data"
        t0 = time.perf_counter()
        make_fake_brats(src, subjects)
        generate_s = time.perf_counter() - t0
        parallel = _timed(src, Path(tmp) / "all_cores", workers=cores, limit=None)
        one = _timed(src, Path(tmp) / "one_worker", workers=1, limit=serial_subjects)
        four = _timed(src, Path(tmp) / "four_channels", workers=cores, limit=serial_subjects,
                      **_four_channel_options())
    return {
        "benchmark": "prepare_brats",
        "volume_shape": list(SHAPE),
        "modalities_on_disk": len(MODALITIES),
        "size": 64,
        "cores": cores,
        "seconds_generating_fake_data": round(generate_s, 1),
        "all_cores_t1ce": parallel,
        "one_worker_t1ce": one,
        "parallel_speedup": round(parallel["subjects_per_s"] / one["subjects_per_s"], 2),
        "all_cores_four_modalities": four,
        "goal": "100 subjects in under 120 s with both cores busy",
        "goal_met": parallel["seconds"] < 120.0 * subjects / 100,
        # On a shared machine the wall time measures the neighbours too; the CPU time per
        # subject does not, and gives the wall time the same work takes on idle cores.
        "load_average_at_start": round(load_before, 2),
        "projected_seconds_per_100_subjects_on_idle_cores": round(
            100 * parallel["cpu_seconds_per_subject"] / cores, 1),
    }


def _four_channel_options() -> dict:
    """All four BraTS modalities as channels (the contract holds them: meta["channels"])."""
    return {"modalities": "t1,t1ce,t2,flair"}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    print(json.dumps(main(subjects=n), indent=2))
