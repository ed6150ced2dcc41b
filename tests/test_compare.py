"""mrigan-tf compare: one budget, one table, and a killed comparison resumes where it stopped."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mrigan_tf.cli import main
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.evaluation import compare
from mrigan_tf.metrics import c2st

SMALL_EVALUATION = ('max_images = 48\nclassifier_steps = 20\nkid_subsets = 4\n'
                    'diversity_pairs = 8\nlpips_pairs = 4\n')


def write_config(path: Path, data: Path, budget: str = "steps = 4\ncheckpoints = 2\n"
                 "snapshot_pairs = 16", models: str | None = None, tstr: str = "",
                 generate: str = "n = 32") -> Path:
    models = models if models is not None else (
        '[[model]]\nname = "gan"\nmodel = "gan"\n'
        'model_options = { latent_dim = 8, generator_units = [16], discriminator_units = [16] }\n'
        '[[model]]\nname = "cwgan"\nmodel = "cwgan-gp"\n'
        'model_options = { latent_dim = 8, width = 8, n_critic = 1 }\n')
    path.write_text(f'data = "{data}"\n[budget]\n{budget}\n'
                    '[training]\nbatch_size = 8\nsteps_per_epoch = 2\njit_compile = false\n'
                    f'samples = 4\n[generate]\n{generate}\n[evaluation]\n{SMALL_EVALUATION}'
                    f'{tstr}\n{models}')
    return path


#: One tiny vanilla GAN, the model of the training-clock tests.
TINY_GAN = ('[[model]]\nname = "gan"\nmodel = "gan"\n'
            'model_options = { latent_dim = 8, generator_units = [8], discriminator_units = [8] }\n')
TINY_TSTR = '[tstr]\nfractions = [1.0]\nseeds = [0, 1]\nmax_steps = 20\n'


def fake_tstr(real, synthetic, out_dir, **settings):
    """``run_tstr``'s output for a fraction-1 run, without its U-Nets (tests/test_tstr.py
    trains them): the Dice of each arm depends on the settings and the synthetic set."""
    from mrigan_tf.atomic import atomic_directory

    assert settings["seeds"] == [0, 1] and settings["max_steps"] == 20
    base = 0.1 * len(str(synthetic)) % 1
    rows = [{"arm": arm, "fraction": fraction, "slice_dice_mean": base + i / 10,
             "slice_dice_mean_sd": 0.01, "healthy_false_positive_rate": i / 20}
            for i, (arm, fraction) in enumerate((("synthetic", 0.0), ("real", 1.0),
                                                 ("real+synthetic", 1.0)))]
    with atomic_directory(out_dir, overwrite=settings.get("overwrite", False)) as tmp:
        (tmp / "tstr.json").write_text(json.dumps({"rows": rows}))


@pytest.fixture(scope="module")
def interrupted_then_resumed(tmp_path_factory, squares_dir):
    """A comparison killed after its first model, then started again with the same command."""
    root = tmp_path_factory.mktemp("compare")
    config = write_config(root / "compare.toml", squares_dir, tstr=TINY_TSTR)
    out = root / "out"
    trained = []
    real_train_model = compare.train_model

    def killed_on_second_model(config, name, *args, **kwargs):
        if name == "cwgan":
            raise KeyboardInterrupt
        trained.append(name)
        return real_train_model(config, name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(c2st, "C2ST_STEPS", 10)
        mp.setattr(compare, "run_tstr", fake_tstr)
        mp.setattr(compare, "train_model", killed_on_second_model)
        with pytest.raises(KeyboardInterrupt):
            compare.run_comparison(config, out, progress=False)
        first_run = {p: p.stat().st_mtime_ns for p in (out / "runs" / "gan").rglob("*")}
        first_evaluation = (out / "evaluation" / "gan" / "report.json").stat().st_mtime_ns
        resumed = []

        def spy(config, name, *args, **kwargs):
            resumed.append(name)
            return real_train_model(config, name, *args, **kwargs)

        mp.setattr(compare, "train_model", spy)
        assert main(["compare", str(config), "--out", str(out), "--quiet"]) == 0
    return {"config": config, "out": out, "trained_before": trained, "resumed": resumed,
            "first_run": first_run, "first_evaluation": first_evaluation}


def test_a_killed_comparison_resumes_without_retraining_the_finished_model(
        interrupted_then_resumed):
    r = interrupted_then_resumed
    assert r["trained_before"] == ["gan"] and r["resumed"] == ["cwgan"]
    # Every file of the finished run is still there, untouched, and so is its evaluation.
    assert r["first_run"] and all(p.stat().st_mtime_ns == t for p, t in r["first_run"].items())
    assert (r["out"] / "evaluation" / "gan" / "report.json").stat().st_mtime_ns \
        == r["first_evaluation"]
    for stage in ("runs", "synthetic", "evaluation", "tstr", "snapshots"):
        assert (r["out"] / stage / "cwgan").is_dir(), stage


def test_the_table_has_one_row_per_model_with_its_reports_values(interrupted_then_resumed):
    out = interrupted_then_resumed["out"]
    table = json.loads((out / "report.json").read_text())
    assert [row["model"] for row in table["rows"]] == ["gan", "cwgan"] and not table["missing"]
    with open(out / "report.csv", newline="") as f:
        assert [row["model"] for row in csv.DictReader(f)] == ["gan", "cwgan"]
    markdown = (out / "report.md").read_text()
    for row in table["rows"]:
        name = row["model"]
        report = json.loads((out / "evaluation" / name / "report.json").read_text())
        overall = report["fidelity"]["overall"]
        pr = report["precision_recall"]
        assert row["c2st_image"] == report["c2st"]["image"]["accuracy"]
        assert row["c2st_image_and_mask_ci_high"] == report["c2st"]["image_and_mask"]["ci_high"]
        assert row["c2st_image_floor"] == report["c2st"]["floor_image"]["accuracy"]
        assert row["fid_matched_n"] == overall["synthetic_vs_train_matched_n"]["fid"]
        assert row["fid_floor"] == overall["floor_heldout_vs_train"]["fid"]
        assert row["kid"] == overall["synthetic_vs_train"]["kid_mean"]
        assert row["recall"] == pr["synthetic_vs_train_matched_n"]["recall"]
        assert row["coverage_floor"] == pr["floor_heldout_vs_train"]["coverage"]
        assert row["ms_ssim_tumor"] == report["diversity"]["ms_ssim"]["per_class"]["tumor"]["synthetic"]["mean"]
        assert row["label_agreement_healthy"] == \
            report["classification"]["synthetic"]["label_agreement"]["healthy"]
        assert row["membership_auc"] == report["privacy"]["membership_inference"]["auc"]
        tstr_rows = json.loads((out / "tstr" / name / "tstr.json").read_text())["rows"]
        arm = {t["arm"]: t for t in tstr_rows}
        assert row["tstr_synthetic_dice"] == arm["synthetic"]["slice_dice_mean"]
        assert row["tstr_real_synthetic_dice"] == arm["real+synthetic"]["slice_dice_mean"]
        assert row["tstr_real_synthetic_healthy_fp"] == \
            arm["real+synthetic"]["healthy_false_positive_rate"]
        summary = json.loads((out / "runs" / name / "training_summary.json").read_text())
        assert row["generator_steps"] == summary["generator_steps"] == 4
        assert f"| {name} |" in markdown
        # Against time: a snapshot half-way (light scores), then the final model (the table's).
        points = table["quality_vs_time"][name]
        assert [p["generator_steps"] for p in points] == [2, 4]
        assert all(p["fid_over_floor"] > 0 and 0 <= p["c2st_image"] <= 1 for p in points)
        assert points[-1]["c2st_image"] == row["c2st_image"]
        assert points[-1]["training_seconds"] == row["training_seconds"] >= points[0]["training_seconds"]
    assert "real vs real" in markdown or "real-vs-real" in markdown
    for picture in ("samples.png", "quality_vs_time.png"):
        assert (out / picture).stat().st_size > 1000
    # The unconditional GAN's labels come from its masks.
    gan = load_dataset(out / "synthetic" / "gan")
    assert gan.meta["generation"]["labels_from_masks"] is True
    assert ((gan.masks.reshape(len(gan), -1).max(axis=1) > 0) == gan.labels).all()


def test_a_changed_entry_is_refused_not_mixed_in(interrupted_then_resumed, tmp_path, squares_dir):
    out = interrupted_then_resumed["out"]
    changed = write_config(tmp_path / "changed.toml", squares_dir, tstr=TINY_TSTR,
                           generate="n = 40")
    with pytest.raises(compare.MriganError, match="settings of model 'gan' changed"):
        compare.run_comparison(changed, out, progress=False)


def test_only_runs_the_named_models(tmp_path, squares_dir, monkeypatch):
    config = write_config(tmp_path / "compare.toml", squares_dir)
    calls = []
    for stage in ("train_model", "write_synthetic_dataset", "evaluate_synthetic",
                  "score_snapshots"):
        monkeypatch.setattr(compare, stage,
                            lambda *a, _stage=stage, **k: calls.append((_stage, Path(a[1]).name)))
    monkeypatch.setattr(compare, "write_comparison", lambda *a: {"rows": [], "missing": []})
    assert main(["compare", str(config), "--out", str(tmp_path / "out"), "--only", "cwgan",
                 "--quiet"]) == 0
    assert {name for _, name in calls} == {"cwgan"}
    assert {stage for stage, _ in calls} == {"train_model", "write_synthetic_dataset",
                                            "evaluate_synthetic", "score_snapshots"}


@pytest.mark.parametrize("change, needle", [
    ({"models": '[[model]]\nname = "a"\nmodel = "stylegan"\n'},
     r"\[\[model\]\] #1 \('a'\): unknown model 'stylegan'"),
    ({"models": '[[model]]\nname = "a"\nmodel = "gan"\n[[model]]\nname = "a"\nmodel = "dcgan"\n'},
     r"\[\[model\]\] #2 \('a'\): the name 'a' is used twice"),
    ({"models": '[[model]]\nname = "a"\nmodel = "gan"\nlearning_rate = 0.1\n'},
     r"\[\[model\]\] #1 \('a'\): unknown key learning_rate"),
    ({"budget": "minutes = 5\nsteps = 100"}, r"\[budget\]: give exactly one of minutes"),
    ({"budget": "minutes = -1"}, r"\[budget\]: minutes must be a positive number"),
    ({"tstr": "[tstr]\nepochs = 3\n"}, r"\[tstr\]: unknown key epochs"),
    ({"models": '[[model]]\nname = "a"\nmodel = "gan"\nlayouts = "real"\n'},
     r"\[\[model\]\] #1 \('a'\): layouts is for a layout-conditioned model"),
    ({"models": '[[model]]\nname = "s"\nmodel = "spade"\nlayouts = "drawn"\n'},
     r"\[\[model\]\] #1 \('s'\): layouts must be one of real, copied"),
])
def test_config_errors_name_the_file_and_the_entry(tmp_path, squares_dir, capsys, change, needle):
    config = write_config(tmp_path / "bad.toml", squares_dir, **change)
    assert main(["compare", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "Traceback" not in err
    assert re.search(needle, err), err
    assert not (tmp_path / "out").exists()          # nothing trained, nothing written


def test_a_spade_entry_renders_the_training_layouts_as_it_says(tmp_path, squares_with_layouts,
                                                               monkeypatch):
    """A layout-conditioned model in a comparison: its snapshots and its synthetic set render
    the real train split's layouts, here copied as they are (``layouts = "copied"``; the
    default, "real", warps them: tests/test_layout_deformation.py)."""
    monkeypatch.setattr(c2st, "C2ST_STEPS", 10)
    entry = ('[[model]]\nname = "spade-copied"\nmodel = "spade"\nlayouts = "copied"\n'
             'model_options = { latent_dim = 8, width = 4 }\n'
             '[[model]]\nname = "spade"\nmodel = "spade"\n')
    config = compare.load_compare_config(write_config(
        tmp_path / "spade.toml", squares_with_layouts, budget="steps = 2\ncheckpoints = 2\n"
        "snapshot_pairs = 8", models=entry, generate="n = 16"))
    assert config.layouts == {"spade-copied": "copied", "spade": "real"}
    out = tmp_path / "out"
    compare.run_comparison(config, out, progress=False, only=["spade-copied"])
    assert json.loads((out / "settings.json").read_text())["spade-copied"]["layouts"] == "copied"
    train = load_dataset(squares_with_layouts).select("train")
    for path in (out / "synthetic" / "spade-copied", out / "snapshots" / "spade-copied" / "1-of-2"):
        synthetic = load_dataset(path)               # masks checked against the layouts
        assert synthetic.meta["generation"]["layouts"].startswith("copied:")
        assert all(any(np.array_equal(lay, real) for real in train.layout)
                   for lay in synthetic.layout)
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [row["model"] for row in rows] == ["spade-copied"]


def test_a_time_budget_stops_training_and_keeps_its_clock(tmp_path, squares_dir):
    config = compare.load_compare_config(write_config(
        tmp_path / "time.toml", squares_dir,
        budget="minutes = 0.0001\nmax_steps = 50\ncheckpoints = 2\nsnapshot_pairs = 8",
        models=TINY_GAN))
    real = load_dataset(squares_dir)
    compare.train_model(config, "gan", tmp_path, real, progress=False)
    summary = json.loads((tmp_path / "runs" / "gan" / "training_summary.json").read_text())
    assert summary["generator_steps"] == 2                    # one epoch, not 25
    clock = json.loads((tmp_path / "snapshots" / "gan" / "clock.json").read_text())
    assert clock["seconds"] > config.budget_seconds
    # The half-way snapshot came with the first epoch, past the whole budget.
    snap = load_dataset(tmp_path / "snapshots" / "gan" / "1-of-2")
    assert len(snap) == 8 and snap.meta["snapshot"]["generator_steps"] == 2
    assert not (tmp_path / "snapshots" / "gan" / "2-of-2").exists()   # the final model's point


@pytest.mark.parametrize("name", ["seed_comparison.toml", "seed_comparison_cpu.toml"])
def test_the_shipped_configs_are_valid(name):
    config = compare.load_compare_config(Path(__file__).parents[1] / "configs" / name)
    assert {"gan", "dcgan", "wgan", "cwgan-gp", "cwgan-hinge"} <= set(config.models)
    assert config.minutes and config.tstr is not None


def test_a_run_killed_mid_training_resumes_with_its_clock(tmp_path, squares_dir, monkeypatch):
    config = compare.load_compare_config(write_config(
        tmp_path / "steps.toml", squares_dir,
        budget="steps = 4\ncheckpoints = 2\nsnapshot_pairs = 8",
        models=TINY_GAN))
    real = load_dataset(squares_dir)
    finish_epoch = compare.BudgetSnapshots.on_epoch_end

    def killed_after_the_first_epoch(self, epoch, logs=None):
        finish_epoch(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(compare.BudgetSnapshots, "on_epoch_end", killed_after_the_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        compare.train_model(config, "gan", tmp_path, real, progress=False)
    clock = tmp_path / "snapshots" / "gan" / "clock.json"
    first = json.loads(clock.read_text())["seconds"]
    assert (tmp_path / "snapshots" / "gan" / "1-of-2").is_dir()       # 2 of 4 steps done
    monkeypatch.setattr(compare.BudgetSnapshots, "on_epoch_end", finish_epoch)
    compare.train_model(config, "gan", tmp_path, real, progress=False)
    summary = json.loads((tmp_path / "runs" / "gan" / "training_summary.json").read_text())
    assert summary["generator_steps"] == 4 and summary["epochs"] == 2
    assert json.loads(clock.read_text())["seconds"] > first
    with open(tmp_path / "runs" / "gan" / "history.csv") as f:
        assert len(f.read().strip().splitlines()) == 3          # header and two epochs


def test_an_unconditional_generator_labels_its_slices_by_their_masks():
    from mrigan_tf.models.families import make_gan
    from mrigan_tf.synth import build_synthetic_dataset

    model = make_gan("gan", (16, 16, 2), latent_dim=4, generator_units=(8,),
                     discriminator_units=(8,), seed=0)
    ds = build_synthetic_dataset(model, ["healthy", "tumor"], 12, progress=False)
    assert len(ds) == 12 and ds.meta["generation"]["labels_from_masks"] is True
    assert ((ds.masks.reshape(12, -1).max(axis=1) > 0) == ds.labels).all()
    with pytest.raises(compare.MriganError, match="--proportions and --per-class need"):
        build_synthetic_dataset(model, ["healthy", "tumor"], 12, proportions=[1, 1])
    with pytest.raises(compare.MriganError, match="needs two classes"):
        build_synthetic_dataset(model, ["healthy", "glioma", "meningioma"], 12)
