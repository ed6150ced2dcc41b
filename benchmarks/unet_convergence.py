"""Benchmark: how fast a U-Net learns the demo phantom's tumors, per-image vs batch Dice. Prints JSON.

Builds the demo phantom (`mrigan-tf phantom --subjects 40 --size 64 --seed 0`) and trains
the TSTR's U-Net (width 8, batch 16, flips, Adam) on every real train subject, once with the
per-image Dice + BCE loss and once with the batch Dice + BCE loss (``compile_unet(dice=...)``),
side by side in one process from the same initial weights and batch order. Every
``--eval-every`` steps it logs the pooled Dice on the val subjects; at the end it scores the
test subjects (``evaluate_segmentation``: tumor-slice Dice, subject Dice, healthy-slice
false-positive rate) and gives the seconds per step.

Measured on 2 shared CPU cores (load 5-7), 1,500 steps, Adam 3e-3, seed 0: per-image val
Dice 0.03 / 0.12 / 0.02 / 0.14 / 0.53 / 0.59 at 100 / 200 / 400 / 500 / 800 / 1500 steps,
test tumor-slice Dice 0.37; batch Dice 0.03 / 0.27 / 0.74 / 0.73 / 0.79 / 0.88, test
tumor-slice Dice 0.73, subject Dice 0.79, healthy-slice FP rate 0.01.

    .venv/bin/python benchmarks/unet_convergence.py [--steps 1500] [--lr 3e-3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    from mrigan_tf.data.phantom import PhantomConfig, write_phantom
    from mrigan_tf.evaluation.segmentation import evaluate_segmentation
    from mrigan_tf.training.segmentation import SegmentationConfig, build_segmenter, fit_unet

    with tempfile.TemporaryDirectory() as tmp:
        real = write_phantom(os.path.join(tmp, "phantom"),
                             PhantomConfig(subjects=40, size=64, seed=0), progress=False)
        results = {}
        for dice in ("image", "batch"):
            config = SegmentationConfig(data=tmp, steps=args.steps, batch_size=args.batch_size,
                                        seed=args.seed, learning_rate=args.lr, jit_compile=False,
                                        model_options={"width": args.width}, dice=dice)
            model = build_segmenter(config, real.image_size)
            curve = []

            class Log(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    curve.append(round(float(logs["val_dice"]), 4))

            t0 = time.perf_counter()
            fit_unet(model, real.select("train"), epochs=args.steps // args.eval_every,
                     steps_per_epoch=args.eval_every, batch_size=args.batch_size,
                     seed=args.seed, augment=True, val=real.select("val"), callbacks=[Log()],
                     verbose=0)
            seconds = time.perf_counter() - t0
            scores = evaluate_segmentation(model, real, "test")
            results[dice] = {
                "val_dice_every": args.eval_every, "val_dice": curve,
                "test_slice_dice": scores["slice_dice_mean"],
                "test_subject_dice": scores["subject_dice_mean"],
                "test_healthy_false_positive_rate": scores["healthy_false_positive_rate"],
                "seconds_per_step_with_val": round(seconds / args.steps, 4)}
    print(json.dumps({"benchmark": "unet_convergence", "steps": args.steps, "lr": args.lr,
                      "width": args.width, "batch_size": args.batch_size, "seed": args.seed,
                      **{f"{k}_dice": v for k, v in results.items()},
                      "test_slice_dice_ratio_batch_over_image":
                          results["batch"]["test_slice_dice"]
                          / max(results["image"]["test_slice_dice"], 1e-9)}, indent=2))


if __name__ == "__main__":
    main()
