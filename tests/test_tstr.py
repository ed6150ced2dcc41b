"""The TSTR experiment: subject subsets, equal budgets, no test leakage, its table and plot;
training to convergence over seeds, the spread and the bootstrap, the strict mode.

"Real" and "synthetic" are 16 px squares datasets; every U-Net trains for a few steps only:
these tests check the experiment's bookkeeping, not what a U-Net learns (test_unet does).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import build_squares_dataset

import mrigan_tf.evaluation.tstr as tstr
from mrigan_tf import cli
from mrigan_tf.data.contract import PreparedDataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.evaluation.tstr import (bootstrap_ci, combine, run_tstr, select_subjects,
                                      subject_classes, subjects_subset)

HEALTHY_SUBJECTS = ("toy-2", "toy-3", "toy-4")
FRACTIONS = (0.2, 1.0)
SETTINGS = dict(steps=8, batch_size=8, seed=0, jit_compile=False, progress=False,
                model_options={"width": 4})


def build_real() -> PreparedDataset:
    """10 subjects x 4 slices: test toy-0, val toy-1; train: 3 healthy and 5 tumor subjects."""
    ds = build_squares_dataset(n_subjects=10, slices=4, size=16, seed=0)
    healthy = np.isin(ds.subjects, HEALTHY_SUBJECTS)
    ds.images[healthy] = np.minimum(ds.images[healthy], -0.8)   # erase their squares
    ds.masks[healthy] = 0
    ds.labels[healthy] = 0
    return ds


def build_synthetic() -> PreparedDataset:
    """24 single-slice "subjects" like mrigan_tf.synth writes: train and val, no test."""
    ds = build_squares_dataset(n_subjects=3, slices=8, size=16, seed=1)
    n = len(ds)
    ds.subjects = np.asarray([f"synthetic-{i:06d}" for i in range(n)])
    ds.split = np.where(np.arange(n) % 8 == 0, "val", "train")
    ds.meta = {**ds.meta, "source": "synthetic", "trained_on": "data/real", "model": "cwgan-gp"}
    return ds


# ## Subsets of real subjects

def test_subject_classes_take_the_highest_slice_label():
    classes = subject_classes(build_real())
    assert set(classes) == {f"toy-{i}" for i in range(2, 10)}        # train split only
    assert [s for s, c in classes.items() if c == 0] == list(HEALTHY_SUBJECTS)


def test_select_subjects_is_stratified_nested_and_seeded():
    real = build_real()
    small, quarter, full = (select_subjects(real, f, seed=0) for f in (0.1, 0.25, 1.0))
    classes = subject_classes(real)
    # At least one subject of each class, even where the fraction rounds to none.
    assert sorted(classes[s] for s in small) == [0, 1]
    # round(0.25 * 3) = 1 healthy, round(0.25 * 5) = 1 tumor.
    assert sorted(classes[s] for s in quarter) == [0, 1]
    assert full == sorted(classes)
    assert set(small) <= set(quarter) <= set(full)
    assert select_subjects(real, 0.6, seed=0) == select_subjects(real, 0.6, seed=0)
    picks = {tuple(select_subjects(real, 0.6, seed=s)) for s in range(6)}
    assert len(picks) > 1                                              # the seed matters
    assert len(select_subjects(real, 0.6)) == 2 + 3                    # round(1.8), round(3.0)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(MriganError, match=r"\(0, 1\]"):
            select_subjects(real, bad)


def test_subjects_subset_keeps_whole_subjects_of_the_train_split():
    real = build_real()
    part = subjects_subset(real, ["toy-5", "toy-0"])          # toy-0 is a test subject
    assert part.subjects.tolist() == ["toy-5"] * 4 and set(part.split.tolist()) == {"train"}
    both = combine(part, build_synthetic().select("train"))
    assert len(both) == 4 + 21 and both.images.shape == (25, 16, 16, 1)


# ## The experiment

@pytest.fixture(scope="session")
def tstr_result(tmp_path_factory):
    """Run TSTR once, recording what every arm was trained on."""
    calls = []
    fit = tstr.fit_unet

    def recording_fit(model, train, epochs, steps_per_epoch, batch_size=32, **kwargs):
        # Everything the arm trains on: its own slices and those mixed into its batches.
        seen = train if kwargs.get("synthetic") is None else combine(train, kwargs["synthetic"])
        calls.append({"subjects": seen.subjects.copy(), "images": seen.images.copy(),
                      "split": seen.split.copy(), "epochs": epochs,
                      "steps_per_epoch": steps_per_epoch, "batch_size": batch_size,
                      "own_subjects": train.subjects.copy(),
                      "synthetic_share": kwargs.get("synthetic_share")})
        return fit(model, train, epochs, steps_per_epoch, batch_size=batch_size, **kwargs)

    out = tmp_path_factory.mktemp("tstr") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tstr, "fit_unet", recording_fit)
        results = run_tstr(build_real(), build_synthetic(), out, fractions=FRACTIONS, **SETTINGS)
    return out, results, calls


def test_tstr_writes_table_report_and_plot(tstr_result):
    out, results, _ = tstr_result
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "tstr.json", "tstr.png"]
    assert json.loads((out / "tstr.json").read_text()) == json.loads(json.dumps(results))
    assert not list(out.parent.glob(".out.partial-*"))
    rows = results["rows"]
    assert [(r["arm"], r["fraction"]) for r in rows] == [
        ("synthetic", 0.0), ("real", 0.2), ("real+synthetic", 0.2),
        ("real", 1.0), ("real+synthetic", 1.0)]
    assert [r["real_subjects"] for r in rows] == [0, 2, 2, 8, 8]
    assert [r["real_slices"] for r in rows] == [0, 8, 8, 32, 32]
    assert [r["synthetic_slices"] for r in rows] == [21, 0, 21, 0, 21]
    for r in rows:
        for key in tstr.SCORES:
            assert r[key] is None or 0.0 <= r[key] <= 1.0
    assert results["real"]["test_subjects"] == ["toy-0"]
    assert set(results["summary"]["gain_from_synthetic"]) == {"0.2", "1.0"}
    assert results["settings"]["synthetic_share"] == 0.5
    report = (out / "report.md").read_text()
    assert report.count("\n| ") == 1 + len(rows)           # header + one line per arm
    assert "80-90%" in report and "data/real" in report
    assert "holds 4 synthetic and 4 real slices" in report


def test_real_plus_synthetic_batches_hold_the_chosen_share(tstr_result):
    _, results, calls = tstr_result
    for call, row in zip(calls, results["rows"]):
        if row["arm"] == "real+synthetic":
            # The real subset is the arm's own data; the synthetic set is mixed in at 0.5.
            assert call["synthetic_share"] == 0.5
            assert all(s.startswith("toy-") for s in call["own_subjects"].tolist())
        else:
            assert call["synthetic_share"] is None


def test_proportional_mix_pools_both_sets(tmp_path, monkeypatch):
    calls = []
    fit = tstr.fit_unet

    def recording_fit(model, train, epochs, steps_per_epoch, **kwargs):
        calls.append((train.subjects.copy(), kwargs.get("synthetic")))
        return fit(model, train, epochs, steps_per_epoch, **kwargs)

    monkeypatch.setattr(tstr, "fit_unet", recording_fit)
    results = run_tstr(build_real(), build_synthetic(), tmp_path / "pooled", fractions=(1.0,),
                       synthetic_share=None, **SETTINGS)
    arms = [r["arm"] for r in results["rows"]]
    pooled_subjects, mixed_in = calls[arms.index("real+synthetic")]
    assert mixed_in is None
    assert sum(s.startswith("synthetic-") for s in pooled_subjects.tolist()) == 21
    assert sum(s.startswith("toy-") for s in pooled_subjects.tolist()) == 32
    assert results["settings"]["synthetic_share"] is None
    assert "in proportion to its size" in (tmp_path / "pooled" / "report.md").read_text()


def test_every_arm_gets_the_same_budget(tstr_result):
    _, results, calls = tstr_result
    assert len(calls) == 5
    # Exactly `steps` optimizer steps of the same batch size for every arm.
    assert {(c["epochs"], c["steps_per_epoch"], c["batch_size"]) for c in calls} == {(1, 8, 8)}
    assert {tuple(r["steps"]) for r in results["rows"]} == {(8,)}
    assert results["settings"]["converge"] is False and results["settings"]["seeds"] == [0]


def test_test_split_is_never_trained_on_and_fractions_select_whole_subjects(tstr_result):
    _, results, calls = tstr_result
    real = build_real()
    test_images = {img.tobytes() for img in real.select("test").images}
    for call, row in zip(calls, results["rows"]):
        assert set(call["split"].tolist()) == {"train"}
        assert "toy-0" not in call["subjects"] and "toy-1" not in call["subjects"]
        assert not any(img.tobytes() in test_images for img in call["images"])
        real_subjects = sorted({s for s in call["subjects"].tolist() if s.startswith("toy-")})
        expected = [] if row["arm"] == "synthetic" else results["subsets"][str(row["fraction"])]
        assert real_subjects == expected
        for s in real_subjects:   # whole subjects: all 4 of their slices
            assert int(np.sum(call["subjects"] == s)) == 4
        synthetic = [s for s in call["subjects"].tolist() if s.startswith("synthetic-")]
        assert len(synthetic) == (0 if row["arm"] == "real" else 21)    # the val slices stay out


def test_tstr_is_deterministic_for_a_seed(tstr_result, tmp_path):
    _, first, _ = tstr_result
    again = run_tstr(build_real(), build_synthetic(), tmp_path / "again", fractions=(0.2,),
                     **SETTINGS)
    assert again["subsets"]["0.2"] == first["subsets"]["0.2"]
    for a, b in zip(again["rows"], first["rows"][:3]):
        assert a.keys() == b.keys()
        for key, value in a.items():
            if key == "per_seed":          # holds the seconds each U-Net took
                continue
            expected = (pytest.approx(b[key], abs=1e-6) if isinstance(value, (float, list))
                        and key not in ("steps", "best_step") else b[key])
            assert value == expected, key


def test_tstr_refuses_bad_inputs_before_training(tmp_path, tstr_result):
    out, _, _ = tstr_result
    real, synth = build_real(), build_synthetic()
    with pytest.raises(DataError, match="already exists"):
        run_tstr(real, synth, out, **SETTINGS)
    with pytest.raises(MriganError, match="fractions"):
        run_tstr(real, synth, tmp_path / "a", fractions=(0.5, 2.0), **SETTINGS)
    big = build_squares_dataset(n_subjects=3, slices=2, size=32)
    with pytest.raises(DataError, match="32 px"):
        run_tstr(real, big, tmp_path / "b", **SETTINGS)
    no_test = build_real()
    no_test.split = np.where(no_test.split == "test", "train", no_test.split)
    with pytest.raises(DataError, match="no test split"):
        run_tstr(no_test, synth, tmp_path / "c", **SETTINGS)
    leaky = combine(synth, real.select("test"))      # real test slices passed off as synthetic
    leaky.split[:] = "train"
    with pytest.raises(DataError, match="real test subjects"):
        run_tstr(real, leaky, tmp_path / "d", **SETTINGS)
    # A share that leaves one source out of every batch of 8 (0.05 * 8 rounds to 0).
    with pytest.raises(MriganError, match="rounds to 0 synthetic slices"):
        run_tstr(real, synth, tmp_path / "e", synthetic_share=0.05, **SETTINGS)
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("share", ["0", "1", "1.5", "half"])
def test_cli_refuses_a_bad_synthetic_share(tmp_path, capsys, share):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tstr", "--real", str(tmp_path), "--synthetic", str(tmp_path),
                  "--out", str(tmp_path / "out"), "--synthetic-share", share])
    assert exit_info.value.code == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_passes_the_synthetic_share(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(tstr, "run_tstr", lambda *a, **k: seen.update(k))
    for text, expected in (("0.25", 0.25), ("proportional", None)):
        assert cli.main(["tstr", "--real", "r", "--synthetic", "s", "--out", str(tmp_path),
                         "--synthetic-share", text]) == 0
        assert seen["synthetic_share"] == expected
    cli.main(["tstr", "--real", "r", "--synthetic", "s", "--out", str(tmp_path)])
    assert seen["synthetic_share"] == tstr.DEFAULT_SYNTHETIC_SHARE


# ## Training to convergence, over seeds

CONVERGE = dict(max_steps=6, eval_every=3, patience=1, min_steps=0, batch_size=8,
                jit_compile=False,
                progress=False, model_options={"width": 4}, n_bootstrap=200)


@pytest.fixture(scope="session")
def converged_result(tmp_path_factory):
    """The real arm (fraction 1) x 3 seeds, trained to convergence; records each U-Net's
    initial weights."""
    initial = []
    fit = tstr.fit_unet_to_convergence

    def recording_fit(model, train, val, **kwargs):
        initial.append((kwargs["seed"], [w.copy() for w in model.get_weights()]))
        assert set(val.split.tolist()) == {"val"} and set(val.subjects.tolist()) == {"toy-1"}
        return fit(model, train, val, **kwargs)

    out = tmp_path_factory.mktemp("tstr") / "converged"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tstr, "fit_unet_to_convergence", recording_fit)
        results = run_tstr(build_real(), build_synthetic(), out, fractions=(1.0,),
                           seeds=(0, 1, 2), arms=("real",), **CONVERGE)
    return out, results, initial


def test_every_arm_trains_once_per_seed_and_reports_numpys_mean_and_sd(converged_result):
    out, results, initial = converged_result
    assert results["settings"]["converge"] and results["settings"]["seeds"] == [0, 1, 2]
    assert [r["arm"] for r in results["rows"]] == ["real"]
    assert [seed for seed, _ in initial] == [0, 1, 2]
    for row in results["rows"]:
        assert [run["seed"] for run in row["per_seed"]] == [0, 1, 2]
        for key in tstr.SCORES:
            values = [run["scores"][key] for run in row["per_seed"]]
            if None in values:
                continue
            assert row[key] == pytest.approx(np.mean(values), abs=1e-12)
            assert row[f"{key}_sd"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        for run in row["per_seed"]:      # the cap holds; the best step is one evaluation
            assert run["steps"] <= 6 and run["best_step"] in (3, 6)
            assert run["best_val_dice"] == max(run["val_dice"])
    report = (out / "report.md").read_text()
    assert report.count("\n| ") == 1 + 1 and " ± " in report
    assert "tumor-slice Dice | subject Dice (3-D) | healthy-slice FP rate" in report
    assert "trained to convergence" in report


def test_seeds_give_different_unets(converged_result):
    _, results, initial = converged_result
    first = {seed: weights[0] for seed, weights in initial}
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])


def test_bootstrap_ci_contains_the_mean_and_is_seeded(converged_result):
    rng = np.random.default_rng(5)
    tables = np.zeros((3, 12, 5))                      # 3 seeds x 12 test subjects
    tables[..., 1] = rng.integers(1, 6, (3, 12))       # tumor slices
    tables[..., 0] = tables[..., 1] * rng.uniform(0.3, 0.9, (3, 12))
    tables[..., 3] = rng.integers(1, 6, (3, 12))       # healthy slices
    tables[..., 2] = np.floor(tables[..., 3] * rng.uniform(0, 0.6, (3, 12)))
    tables[..., 4] = np.where(np.arange(12) % 4 == 0, np.nan, rng.uniform(0.3, 0.9, (3, 12)))
    ci = bootstrap_ci(tables, n_bootstrap=500, seed=0)
    means = {"slice_dice_mean": np.mean(tables[..., 0].sum(1) / tables[..., 1].sum(1)),
             "healthy_false_positive_rate": np.mean(tables[..., 2].sum(1) / tables[..., 3].sum(1)),
             "subject_dice_mean": np.mean(np.nanmean(tables[..., 4], axis=1))}
    for key, mean in means.items():
        low, high = ci[key]
        assert low < mean < high and high - low < 0.5, key
    assert bootstrap_ci(tables, n_bootstrap=500, seed=0) == ci
    assert bootstrap_ci(tables, n_bootstrap=500, seed=1) != ci
    with pytest.raises(MriganError, match="n_bootstrap"):
        bootstrap_ci(tables, n_bootstrap=0)
    # In the experiment: one test subject, so every resample is the sample itself.
    for row in converged_result[1]["rows"]:
        for key in tstr.HEADLINE:
            if row[key] is not None:
                assert row[f"{key}_ci"] == pytest.approx([row[key]] * 2, abs=1e-9)


def test_strict_mode_trains_each_fraction_on_its_own_synthetic_set(tmp_path, monkeypatch):
    sets = {}
    for f, tag in ((0.2, "a"), (1.0, "b")):
        ds = build_synthetic()
        ds.subjects = np.asarray([f"synthetic-{tag}-{i}" for i in range(len(ds))])
        sets[f] = ds
    calls = []
    fit = tstr.fit_unet

    def recording_fit(model, train, epochs, steps_per_epoch, **kwargs):
        mixed = kwargs.get("synthetic")
        seen = train.subjects.tolist() + ([] if mixed is None else mixed.subjects.tolist())
        calls.append({s.split("-")[1] for s in seen if s.startswith("synthetic-")})
        return fit(model, train, epochs, steps_per_epoch, **kwargs)

    monkeypatch.setattr(tstr, "fit_unet", recording_fit)
    results = run_tstr(build_real(), sets, tmp_path / "strict", fractions=FRACTIONS,
                       arms=("real+synthetic",), **SETTINGS)
    arms = [(r["arm"], r["fraction"]) for r in results["rows"]]
    assert arms == [("real+synthetic", 0.2), ("real+synthetic", 1.0)]
    assert calls == [{"a"}, {"b"}]
    assert results["settings"]["strict"]
    assert results["synthetic"]["path"] == {"0.2": "(in memory)", "1.0": "(in memory)"}
    assert "Strict mode" in (tmp_path / "strict" / "report.md").read_text()
    with pytest.raises(MriganError, match="one synthetic set per fraction"):
        run_tstr(build_real(), {0.2: sets[0.2]}, tmp_path / "x", fractions=FRACTIONS,
                 **SETTINGS)
    assert not (tmp_path / "x").exists()


def test_convergence_settings_and_seeds_are_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(tstr, "build_segmenter", lambda *a, **k: pytest.fail("trained"))
    real, synth = build_real(), build_synthetic()
    bad = [(dict(seeds=()), "at least one seed"), (dict(seeds=(1, 1)), "repeats a seed"),
           (dict(patience=0), "--patience must be"),
           (dict(eval_every=10), "larger than --max-steps"),
           (dict(steps=5, converge=True), "fixed budget"),
           (dict(seeds=(0,), seed=0), "not both"),
           (dict(n_bootstrap=0), "n_bootstrap"), (dict(arms=("fake",)), "arms must be")]
    for i, (settings, match) in enumerate(bad):
        with pytest.raises(MriganError, match=match):
            run_tstr(real, synth, tmp_path / str(i), fractions=(1.0,),
                     **{**CONVERGE, **settings})
    no_val = build_real()
    no_val.split = np.where(no_val.split == "val", "train", no_val.split)
    with pytest.raises(DataError, match="no val split"):
        run_tstr(no_val, synth, tmp_path / "v", fractions=(1.0,), **CONVERGE)
    assert not any(tmp_path.iterdir())


def test_cli_passes_the_convergence_settings_and_the_strict_sets(tmp_path, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(tstr, "run_tstr", lambda *a, **k: seen.update(k, synthetic=a[1]))
    base = ["tstr", "--real", "r", "--out", str(tmp_path)]
    assert cli.main([*base, "--synthetic", "s"]) == 0
    assert (seen["seeds"], seen["converge"], seen["steps"]) == ([0, 1, 2], True, None)
    assert (seen["max_steps"], seen["eval_every"], seen["patience"], seen["min_steps"],
            seen["batch_size"], seen["learning_rate"]) == (
        tstr.DEFAULT_MAX_STEPS, tstr.DEFAULT_EVAL_EVERY, tstr.DEFAULT_PATIENCE,
        tstr.DEFAULT_MIN_STEPS, tstr.DEFAULT_BATCH_SIZE, tstr.DEFAULT_LEARNING_RATE)
    assert seen["synthetic"] == "s" and seen["subset_seed"] == 0
    assert cli.main([*base, "--synthetic", "s", "--seeds", "3,4", "--max-steps", "900",
                     "--eval-every", "30", "--patience", "2", "--seed", "7",
                     "--min-steps", "60"]) == 0
    assert (seen["seeds"], seen["max_steps"], seen["eval_every"], seen["patience"],
            seen["subset_seed"], seen["min_steps"]) == ([3, 4], 900, 30, 2, 7, 60)
    for flag in ("--fixed-steps", "--steps"):
        assert cli.main([*base, "--synthetic", "s", flag, "400"]) == 0
        assert (seen["converge"], seen["steps"]) == (False, 400)
    assert cli.main([*base, "--synthetic", "0.1=a", "--synthetic", "1=b"]) == 0
    assert seen["synthetic"] == {0.1: "a", 1.0: "b"}
    for bad in (["--synthetic", "a", "--synthetic", "b"], ["--synthetic", "x=a"],
                ["--synthetic", "s", "--seeds", "0,one"],
                ["--synthetic", "0.1=a", "--synthetic", "0.1=b"]):
        assert cli.main([*base, *bad]) == 2
        assert "--s" in capsys.readouterr().err
