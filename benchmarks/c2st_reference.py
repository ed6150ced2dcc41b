"""Benchmark: the classifier two-sample test on the shipped reference model. Prints JSON.

Builds the demo phantom (`mrigan-tf phantom --subjects 40 --size 64 --seed 0`), generates
from `mrigan_tf/reference/phantom64` (`mrigan-tf generate --n 2000 --seed 0`), and runs
`mrigan_tf.metrics.c2st` with its fixed classifier:

* the reference model's slices against the real **train** subjects' slices (the subjects it
  was trained on), image channel alone and image + mask: the issue asks for accuracy >= 0.85;
* the same with the synthetic set subsampled to the train split's class mix (the generator
  is asked for equal classes, the phantom has ~28% tumor slices): how much of the score a
  mere difference in class mix explains;
* the real-vs-real floor, train subjects against held-out (val + test) subjects: ~0.5,
  within its interval (``--floor-seeds 1,2,3``: the image floor for more splits).

Each entry gives held-out accuracy, its Clopper-Pearson 95% interval and the interval that
counts held-out subjects instead of slices, the one-sided p-value against 1/2, the per-side
accuracies, the sizes, the seconds it took, and the indices of the held-out synthetic slices
the classifier is surest about.

    .venv/bin/python benchmarks/c2st_reference.py [--floor-seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _summary(result, seconds: float) -> dict:
    described = result.describe()
    keep = ("accuracy", "ci_low", "ci_high", "subject_ci_low", "subject_ci_high", "p_value",
            "correct", "heldout", "heldout_subjects", "real_accuracy", "synthetic_accuracy",
            "train_per_side", "heldout_per_side", "distinguishable", "surest_synthetic")
    out = {k: described[k] for k in keep}
    for k in ("accuracy", "ci_low", "ci_high", "subject_ci_low", "subject_ci_high",
              "real_accuracy", "synthetic_accuracy"):
        out[k] = round(out[k], 4)
    out["p_value"] = float(f"{out['p_value']:.3g}")
    out["seconds"] = round(seconds, 1)
    return out


def _class_mix_matched(synthetic, real, seed: int):
    """The synthetic set subsampled (seeded) to the real set's class proportions."""
    from mrigan_tf.data.contract import PreparedDataset

    share = np.bincount(real.labels, minlength=real.num_classes) / len(real)
    have = np.bincount(synthetic.labels, minlength=real.num_classes)
    total = int(np.floor(np.min(have[share > 0] / share[share > 0])))
    want = np.floor(share * total).astype(int)
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(synthetic.labels == k), want[k],
                                              replace=False) for k in range(len(want))]))
    return PreparedDataset(synthetic.images[keep], synthetic.masks[keep],
                           synthetic.labels[keep], synthetic.subjects[keep],
                           synthetic.split[keep], dict(synthetic.meta)), keep


def main(subjects: int = 40, size: int = 64, n: int = 2000, seed: int = 0,
         keep: str | None = None, floor_seeds: tuple[int, ...] = ()) -> dict:
    from mrigan_tf.data.phantom import PhantomConfig, write_phantom
    from mrigan_tf.metrics import c2st
    from mrigan_tf.reference import reference_dir
    from mrigan_tf.synth import write_synthetic_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(keep) if keep else Path(tmp)
        t0 = time.perf_counter()
        config = PhantomConfig(subjects=subjects, size=size, seed=seed)
        real = write_phantom(root / "phantom", config, progress=False, overwrite=True)
        synthetic = write_synthetic_dataset(reference_dir(), root / "synthetic", n=n, seed=seed,
                                            progress=False, overwrite=True)
        prepare = time.perf_counter() - t0
    train = real.select("train")
    matched, matched_index = _class_mix_matched(synthetic, train, seed)

    results = {}
    for name, run in [
        ("image", lambda: c2st.classifier_two_sample_test(train, synthetic, seed=seed)),
        ("image+mask", lambda: c2st.classifier_two_sample_test(train, synthetic, seed=seed,
                                                               channels="image+mask")),
        ("image_class_mix_matched",
         lambda: c2st.classifier_two_sample_test(train, matched, seed=seed)),
        ("image+mask_class_mix_matched",
         lambda: c2st.classifier_two_sample_test(train, matched, seed=seed,
                                                 channels="image+mask")),
        ("floor_image", lambda: c2st.real_vs_real_floor(real, seed=seed)),
        ("floor_image+mask", lambda: c2st.real_vs_real_floor(real, seed=seed,
                                                             channels="image+mask")),
    ] + [(f"floor_image_seed{s}", lambda s=s: c2st.real_vs_real_floor(real, seed=s))
         for s in floor_seeds if s != seed]:
        t0 = time.perf_counter()
        result = run()
        results[name] = _summary(result, time.perf_counter() - t0)
        if "matched" in name:   # indices into the full synthetic set, as for the others
            results[name]["surest_synthetic"] = [int(matched_index[i])
                                                 for i in result.surest_synthetic]
    heldout = real.split != "train"
    return {
        "benchmark": "c2st_reference",
        "reference": str(reference_dir()),
        "phantom": {"subjects": subjects, "size": size, "seed": seed,
                    "train_slices": len(train), "train_subjects": len(set(train.subjects)),
                    "heldout_slices": int(heldout.sum()),
                    "heldout_subjects": len(set(real.subjects[heldout])),
                    "train_tumor_share": round(float(np.mean(train.labels > 0)), 3)},
        "synthetic": {"n": len(synthetic), "seed": seed,
                      "tumor_share": round(float(np.mean(synthetic.labels > 0)), 3),
                      "class_mix_matched_n": len(matched)},
        "classifier": c2st.c2st_settings(),
        "results": results,
        "positive_control_ok": results["image"]["accuracy"] >= 0.85,
        "floor_ok": all(results[k]["ci_low"] <= 0.5 <= results[k]["ci_high"]
                        for k in ("floor_image", "floor_image+mask")),
        "floor_ok_by_subjects": all(results[k]["subject_ci_low"] <= 0.5
                                    <= results[k]["subject_ci_high"]
                                    for k in results if k.startswith("floor")),
        "cores": os.cpu_count() or 1,
        "seconds_prepare_inputs": round(prepare, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="write the phantom and the synthetic set here "
                                       "instead of a temporary directory")
    parser.add_argument("--floor-seeds", default="",
                        help="more seeds for the image floor, e.g. 1,2,3: its spread over splits")
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.floor_seeds.split(",") if s.strip())
    print(json.dumps(main(args.subjects, args.size, args.n, args.seed, args.keep, seeds),
                     indent=2))
