"""The main job on the embedded dataset, end to end: ``make demo`` / ``mrigan-tf demo``.

1. simulate the phantom dataset from the MNI152 template;
2. train the conditional WGAN-GP on it for a few minutes: a *short* run, to show training
   (sample grids per epoch, loss curves) within a CPU time budget;
3. generate a synthetic dataset of image/mask pairs (10,000 by default, the seed report's
   scale) in the dataset contract, with the **reference model** (``mrigan_tf.reference``:
   the same model trained for thousands of steps on this same phantom's train subjects)
   when it matches the phantom, else with the short run's model; the report says which;
4. evaluate it against the real data (``mrigan_tf.evaluation.report``: FID/KID with the
   real-vs-real floor, diversity, mask statistics, memorization audit) -> ``evaluation/``;
   with the reference model, the short run is evaluated too (``evaluation_short_run/``),
   so that the report sets minutes of training against the reference;
5. write pictures (real vs synthetic per class, loss curves) and ``report.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from mrigan_tf.data.contract import load_dataset
from mrigan_tf.data.phantom import PhantomConfig, write_phantom
from mrigan_tf.evaluation.report import evaluate_synthetic, verdict_rows
from mrigan_tf.reference import DEFAULT_REFERENCE, matches_dataset, reference_config, reference_dir
from mrigan_tf.synth import write_synthetic_dataset
from mrigan_tf.training.run_directory import LOSS_CURVES_FILE
from mrigan_tf.training.runner import TrainConfig, train_gan
from mrigan_tf.training.time_budget import TimeBudget
from mrigan_tf.visualization import plot_dataset_classes, plot_real_vs_synthetic

#: Small enough to train visibly within minutes on two CPU cores (the reference model has
#: the same architecture, trained for longer).
DEMO_MODEL = {"width": 16, "latent_dim": 64, "n_critic": 3, "augment": "translation,cutout"}
DEMO_BATCH = 32
DEMO_STEPS_PER_EPOCH = 50

#: Slices per set in the demo's evaluation: the FID/KID, diversity and memorization figures
#: take under a minute on two CPU cores at this size (25 s measured, 64 px).
DEMO_EVALUATION_IMAGES = 2000

STAGES_NOT_YET_AVAILABLE = [
    "train-on-synthetic / test-on-real U-Nets (`mrigan-tf tstr`: 7 U-Nets, about 10-15 "
    "minutes on a 2-core CPU with the small settings in the report's command; the "
    "reference model's own TSTR results are in its directory, `tstr/`)",
]

FULL_RUN_COMMAND = (
    "mrigan-tf train --model cwgan-gp --data runs/demo/phantom --out runs/full "
    "--steps 20000 --batch-size 64 --width 64 --latent-dim 128 --n-critic 5 "
    "--augment translation,cutout,brightness,contrast   # hours on a CPU, minutes on a GPU"
)


def run_demo(out_dir: str | os.PathLike = "runs/demo", subjects: int = 40, size: int = 64,
             seed: int = 0, train_minutes: float = 3.0, max_steps: int = 400,
             n_synthetic: int = 10_000, jit_compile: bool | None = None,
             progress: bool = True, use_reference: bool = True,
             evaluation_options: dict | None = None) -> Path:
    """Run the pipeline under ``out_dir``; return it. Previous demo outputs are replaced.

    ``use_reference=False`` generates with the short run's model even when the reference
    model matches. ``evaluation_options`` go to ``evaluate_synthetic`` (tests make it small).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    evaluation_options = {"max_images": DEMO_EVALUATION_IMAGES, **(evaluation_options or {})}

    t0 = time.perf_counter()
    real = write_phantom(out / "phantom", PhantomConfig(subjects=subjects, size=size, seed=seed),
                         progress=progress, overwrite=True)
    timings["phantom"] = time.perf_counter() - t0
    plot_dataset_classes(real, per_class=8, seed=seed, path=out / "phantom_grid.png",
                         title=f"Phantom (simulated from MNI152, not patient data), {size} px")

    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)   # the demo always shows a fresh training run
    batch = min(DEMO_BATCH, len(real.select("train")))
    config = TrainConfig(model="cwgan-gp", data=str(out / "phantom"), steps=max_steps,
                         steps_per_epoch=min(DEMO_STEPS_PER_EPOCH, max_steps), batch_size=batch,
                         seed=seed, jit_compile=jit_compile, model_options=dict(DEMO_MODEL))
    budget = TimeBudget(train_minutes * 60.0)
    t0 = time.perf_counter()
    model, history = train_gan(config, run_dir, callbacks=[budget],
                               verbose="auto" if progress else 0)
    timings["training"] = time.perf_counter() - t0
    generator_steps = int(model.g_optimizer.iterations.numpy())
    shutil.copyfile(run_dir / LOSS_CURVES_FILE, out / "loss_curves.png")

    if use_reference:
        reference_used, why_not = matches_dataset(real)
    else:
        reference_used, why_not = False, "not asked for (--no-reference)"
    generator = {"name": f"reference model {DEFAULT_REFERENCE!r}" if reference_used
                 else "the short run above", "reference_used": reference_used,
                 "why_not_reference": why_not}
    if reference_used:
        generator["reference_steps"] = reference_config()["reference"].get("generator_steps")

    real_train = load_dataset(out / "phantom").select("train")
    t0 = time.perf_counter()
    synthetic = write_synthetic_dataset(reference_dir() if reference_used else run_dir,
                                        out / "synthetic", n=n_synthetic, seed=seed,
                                        progress=progress, overwrite=True)
    timings["generation"] = time.perf_counter() - t0
    made_by = (f"the reference model ({generator['reference_steps']} generator steps)"
               if reference_used else f"the short run ({generator_steps} generator steps)")
    plot_real_vs_synthetic(real_train, synthetic, per_class=8, seed=seed,
                           path=out / "real_vs_synthetic.png",
                           title=f"real (rows 1, 3) vs synthetic (rows 2, 4): {made_by}")

    t0 = time.perf_counter()
    evaluation = evaluate_synthetic(out / "phantom", out / "synthetic", out / "evaluation",
                                    seed=seed, overwrite=True, progress=progress,
                                    **evaluation_options)
    timings["evaluation"] = time.perf_counter() - t0

    short_evaluation = None
    if reference_used:
        # The short run, evaluated the same way, so the report can set them side by side.
        t0 = time.perf_counter()
        short = write_synthetic_dataset(run_dir, out / "synthetic_short_run",
                                        n=min(n_synthetic, evaluation_options["max_images"]),
                                        seed=seed, progress=progress, overwrite=True)
        plot_real_vs_synthetic(real_train, short, per_class=8, seed=seed,
                               path=out / "real_vs_short_run.png",
                               title=f"real (rows 1, 3) vs synthetic (rows 2, 4): the short run "
                                     f"({generator_steps} generator steps)")
        short_evaluation = evaluate_synthetic(out / "phantom", out / "synthetic_short_run",
                                              out / "evaluation_short_run", seed=seed,
                                              overwrite=True, progress=progress,
                                              **evaluation_options)
        timings["short_run_evaluation"] = time.perf_counter() - t0

    report = _report(real, synthetic, config, generator_steps, budget, history, timings,
                     train_minutes, max_steps, evaluation, generator, short_evaluation)
    (out / "report.md").write_text(report)
    summary = {
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "generator_steps": generator_steps, "stopped_by_time_budget": budget.stopped_early,
        "synthetic_pairs": len(synthetic), "model": DEMO_MODEL, "generator": generator,
        "quality": quality_summary(evaluation)}
    if short_evaluation is not None:
        summary["quality_short_run"] = quality_summary(short_evaluation)
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out


def quality_summary(evaluation: dict) -> dict:
    """The headline figures of an evaluation report: FID/KID vs the floor, diversity, audit."""
    overall = evaluation["fidelity"]["overall"]
    diversity = evaluation["diversity"]["ms_ssim"]["per_class"]
    memorization = evaluation["memorization"]
    return {
        "extractor": f"{evaluation['extractor']['name']}: {evaluation['extractor']['weights']}",
        "fid_synthetic_matched_n": overall["synthetic_vs_train_matched_n"]["fid"],
        "fid_floor_real_vs_real": overall["floor_heldout_vs_train"]["fid"],
        "n_matched": overall["floor_heldout_vs_train"]["n"],
        "kid_synthetic": overall["synthetic_vs_train"]["kid_mean"],
        "kid_floor_real_vs_real": overall["floor_heldout_vs_train"]["kid_mean"],
        "ms_ssim_diversity": {name: {"real": d["real_train"]["mean"],
                                     "synthetic": d["synthetic"]["mean"]}
                              for name, d in diversity.items()},
        "memorization_suspected": bool(memorization["ssim"]["suspected"]
                                       or memorization["correlation"]["suspected"]),
    }


def _quality_lines(evaluation: dict, short_evaluation: dict | None = None) -> list[str]:
    q = quality_summary(evaluation)
    short = quality_summary(short_evaluation) if short_evaluation else None
    extra_head = " short run |" if short else ""
    extra_rule = "---|" if short else ""

    def row(label: str, key: str) -> str:
        cells = f"{q[key]:.3g} |" + (f" {short[key]:.3g} |" if short else "")
        return f"   | {label} | {cells}"

    lines = [
        f"5. **Evaluation** against the phantom (features: {q['extractor']}) -> `evaluation/` "
        "(report.md, report.json, evaluation.png)"
        + (", and the short run's in `evaluation_short_run/`:" if short else ":"),
        "",
        f"   | figure | {'reference model' if short else 'synthetic'} |{extra_head} "
        "real vs real (floor) |",
        f"   |---|---|{extra_rule}---|",
        row(f"FID, N={q['n_matched']} (matched)", "fid_synthetic_matched_n")
        + f" {q['fid_floor_real_vs_real']:.3g} |",
        row("KID", "kid_synthetic") + f" {q['kid_floor_real_vs_real']:.3g} |",
    ]
    for name, d in q["ms_ssim_diversity"].items():
        short_cell = f" {short['ms_ssim_diversity'][name]['synthetic']:.3g} |" if short else ""
        lines.append(f"   | MS-SSIM within {name} (higher = less diverse) | "
                     f"{d['synthetic']:.3g} |{short_cell} {d['real']:.3g} (real train) |")
    verdict = ("**suspected**: synthetic slices sit closer to training slices than new real "
               "slices do" if q["memorization_suspected"]
               else "no sign: synthetic slices are no closer to training slices than held-out "
                    "real slices are")
    lines += ["", f"   Memorization audit: {verdict}. The floor is what a perfect generator "
              "would score at this sample size; the further above it, the worse. These "
              "domain-feature figures compare runs on this dataset, never published "
              "InceptionV3 FIDs.", ""]
    return lines


def _report(real, synthetic, config, generator_steps, budget, history, timings,
            train_minutes, max_steps, evaluation, generator, short_evaluation=None) -> str:
    counts = real.counts()
    per_split = real.subjects_per_split()
    last = {k: round(float(v[-1]), 3) for k, v in history.items()} if history else {}
    synth_counts = {name: int((synthetic.labels == k).sum())
                    for k, name in enumerate(synthetic.class_names)}
    disagreements = synthetic.meta["label_mask_disagreements"]
    reference_used = generator["reference_used"]
    lines = [
        "# mrigan-tf demo report",
        "",
        "The data is simulated from the MNI152 2009 template: it is not patient data.",
        "",
        f"## Verdict: the synthetic dataset against the phantom "
        f"({'reference model' if generator['reference_used'] else 'the short run'})",
        "",
        *verdict_rows(evaluation),
        "",
        "## What ran",
        "",
        f"1. **Phantom**: {len(set(real.subjects))} simulated subjects, {real.image_size} px, seed "
        f"{real.meta['seed']}: {len(real)} slices in {timings['phantom']:.0f} s -> `phantom/`, "
        "`phantom_grid.png`.",
        "",
        "   | split | subjects | " + " | ".join(real.class_names) + " |",
        "   |---|---|" + "---|" * real.num_classes,
    ]
    for split, by_class in counts.items():
        lines.append(f"   | {split} | {len(per_split[split])} | "
                     + " | ".join(str(by_class[c]) for c in real.class_names) + " |")
    stop = (f"stopped by the {train_minutes:g}-minute budget" if budget.stopped_early
            else f"the {max_steps}-step cap")
    if reference_used:
        source = (f"generated by the **reference model** `mrigan_tf/reference/phantom64` (the "
                  f"same architecture trained for {generator['reference_steps']} generator "
                  "steps on this phantom's train subjects; how it was made and its own "
                  "evaluation and TSTR results: its README.md)")
    else:
        source = (f"generated by **the short run above** (reference model not used: "
                  f"{generator['why_not_reference']})")
    lines += [
        "",
        f"2. **A short training run** of the conditional WGAN-GP (image and mask generated "
        f"jointly, conditioned on the class), a small model "
        f"({', '.join(f'{k}={v}' for k, v in DEMO_MODEL.items())}, batch {config.batch_size}): "
        f"{generator_steps} generator steps in {timings['training']:.0f} s ({stop}) -> `run/` "
        "(model.keras, sample grids per epoch, history.csv), `loss_curves.png`.",
        f"   Last epoch: {last}.",
        f"3. **Synthetic dataset**: {len(synthetic)} image/mask pairs {synth_counts} in "
        f"{timings['generation']:.0f} s -> `synthetic/` (same contract as the real data), "
        f"{source}. Class/mask disagreements: {disagreements}.",
        "4. **Picture**: `real_vs_synthetic.png`, real slices above synthetic ones, per class"
        + (" (and `real_vs_short_run.png` for the short run)." if reference_used else "."),
    ]
    lines += _quality_lines(evaluation, short_evaluation)
    lines += [
        "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + ".",
        "",
        "## Read this before judging the pictures",
        "",
    ]
    if reference_used:
        lines += [
            f"The short run's {generator_steps} steps give **rough** images (blurry anatomy, "
            "blob-like tumors): compare `real_vs_short_run.png` with `real_vs_synthetic.png` "
            "and the two columns of the table above. That gap is what training longer buys. "
            "The reference model is small (it was trained on two CPU cores); a larger model "
            "trained for about 20,000 steps (minutes on a GPU, hours on a CPU) does better:",
        ]
    else:
        lines += [
            "A few hundred generator steps of a small model on a CPU give **rough** images: "
            "blurry anatomy, blob-like tumors, masks that only roughly follow them. That is "
            "what this demo can show in minutes, not what the method can do. A full run "
            "trains a larger model for about 20,000 steps (minutes on a GPU, hours on a CPU):",
        ]
    lines += [
        "",
        "```bash",
        FULL_RUN_COMMAND,
        "mrigan-tf generate --run runs/full --n 10000 --out runs/full_synthetic",
        "mrigan-tf evaluate --real runs/demo/phantom --synthetic runs/full_synthetic "
        "--out runs/full_evaluation",
        "mrigan-tf tstr --real runs/demo/phantom --synthetic runs/full_synthetic --out runs/tstr "
        "--fixed-steps 400 --seeds 0 --width 16 --batch-size 16   # CPU-sized; drop the last four "
        "on a GPU for U-Nets trained to convergence over 3 seeds",
        "```",
        "",
        "## Not in this demo",
        "",
    ]
    lines += [f"- {stage}" for stage in STAGES_NOT_YET_AVAILABLE]
    return "\n".join(lines) + "\n"
