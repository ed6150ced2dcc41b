"""The `mrigan-tf` parser: shared flags per command, train's GAN and U-Net option groups, the
refusal of one model's options with the other model, and the old spellings.

Parsing only: where a command runs, the module it calls is replaced by a stub that records
what reached it (and `import keras` fails, so nothing here can start training).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import types

import pytest

from mrigan_tf import cli

# The shared flags each command takes; the others must not appear in its --help.
SHARED = {
    "phantom": ("--seed", "--overwrite", "--quiet"),
    "train": ("--seed", "--jit", "--quiet"),
    "generate": ("--seed", "--overwrite", "--quiet"),
    "evaluate": ("--seed", "--overwrite", "--quiet"),
    "tstr": ("--seed", "--jit", "--overwrite", "--quiet"),
    "demo": ("--seed", "--jit", "--quiet"),
}
ALL_SHARED = ("--seed", "--jit", "--overwrite", "--quiet")

# Each GAN option with a value, and each U-Net option with a value (old spellings included).
GAN_OPTIONS = {
    "--d-lr": ["1e-4"], "--g-lr": ["2e-4"], "--latent-dim": ["8"], "--joint": [],
    "--n-critic": ["3"], "--clip-value": ["0.02"], "--augment": ["translation"],
    "--gp-weight": ["5"], "--gp-every": ["3"], "--label-smoothing": ["0.1"],
    "--feature-matching": [], "--mixed-precision": [], "--steps-per-execution": ["2"],
    "--loss": ["hinge"], "--conditioning": ["acgan"], "--acgan-weight": ["0.5"],
    "--ema-decay": ["0.999"], "--r1-weight": ["10"], "--spectral-norm": [],
    "--minibatch-std": ["4"], "--phase-steps": ["10"], "--fade-steps": ["10"],
    "--start-size": ["8"], "--mask-consistency": ["1"], "--mask-segmenter": ["runs/unet"],
}
UNET_OPTIONS = {
    "--unet-lr": ["0.01"], "--lr": ["0.01"], "--depth": ["2"], "--dropout": ["0.2"],
    "--no-flips": [], "--no-augment": [],
}
MINIMAL = {
    "phantom": ["--out", "d"],
    "train": ["--model", "cwgan-gp", "--data", "d", "--out", "r", "--steps", "1"],
    "generate": ["--run", "r", "--out", "d"],
    "evaluate": ["--real", "r", "--synthetic", "s", "--out", "o"],
    "tstr": ["--real", "r", "--synthetic", "s", "--out", "o"],
    "demo": [],
}


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def _section(help_text: str, title: str) -> set[str]:
    """The long options listed in the help section called ``title``."""
    sections = re.split(r"\n\n(?=\S[^\n]*:\n)", help_text)
    [section] = [s for s in sections if s.startswith(title + ":")]
    return set(re.findall(r"^  (--[\w-]+)", section, flags=re.M)) | set(
        re.findall(r"^  --[\w-]+(?: [A-Z_]+)?, (--[\w-]+)", section, flags=re.M))


def _train(*extra: str, model: str = "cwgan-gp", out: str = "run") -> list[str]:
    return ["train", "--model", model, "--data", "data", "--out", out, "--steps", "2", *extra]


def _parser_modules_loaded() -> None:
    # Whatever building the parser imports is imported now, before `keras` is replaced.
    cli.build_parser()


@pytest.fixture
def no_keras(monkeypatch):
    """`import keras` fails: a refusal must come before any model code is reached."""
    _parser_modules_loaded()
    monkeypatch.setitem(sys.modules, "keras", None)


def _stub_module(monkeypatch, name: str, **attributes) -> None:
    monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attributes))


@pytest.fixture
def tensorflow_keras(monkeypatch):
    """A stand-in `keras` that only says which backend it runs on."""
    _parser_modules_loaded()
    _stub_module(monkeypatch, "keras",
                 backend=types.SimpleNamespace(backend=lambda: "tensorflow"))


# ## Shared flags

@pytest.mark.parametrize("command", sorted(SHARED))
def test_help_exits_0_and_lists_the_commands_shared_flags(command, capsys):
    text = _help(command, capsys)
    common = _section(text, "common options") - {"--no-jit"}
    assert common == set(SHARED[command])
    for flag in set(ALL_SHARED) - set(SHARED[command]):
        assert flag not in text, (command, flag)


def test_shared_flags_keep_their_help_per_command(capsys):
    assert "random seed; same seed, same data (default 0)" in _help("phantom", capsys)
    assert "where XLA's convolutions are slower" in _help("train", capsys)
    for command in ("tstr", "demo"):
        text = " ".join(_help(command, capsys).split())
        assert "XLA-compile the train step (default: on with a GPU, off on CPU)" in text
        assert "slower" not in text
    assert "replace --out if it exists" in _help("generate", capsys)


@pytest.mark.parametrize("command", sorted(SHARED))
def test_shared_flags_parse_with_the_same_defaults_per_command(command):
    args = cli.build_parser().parse_args([command, *MINIMAL[command]])
    assert args.seed == 0 and args.quiet is False
    assert getattr(args, "overwrite", False) is False and getattr(args, "jit", None) is None
    given = cli.build_parser().parse_args(
        [command, *MINIMAL[command], "--seed", "7", "--quiet"]
        + (["--overwrite"] if "--overwrite" in SHARED[command] else [])
        + (["--no-jit"] if "--jit" in SHARED[command] else []))
    assert given.seed == 7 and given.quiet is True
    if "--overwrite" in SHARED[command]:
        assert given.overwrite is True
    if "--jit" in SHARED[command]:
        assert given.jit is False


def test_prepare_keeps_its_own_per_source_flags(capsys):
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(["prepare", "brats", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--seed", "--overwrite", "--quiet"))


# ## train: the GAN and U-Net groups

def test_train_groups_hold_each_models_options(capsys):
    text = _help("train", capsys)
    assert _section(text, "GAN options") == set(GAN_OPTIONS)
    assert _section(text, "U-Net options (--model unet)") == set(UNET_OPTIONS)
    general = _section(text, "options")
    assert not general & (set(GAN_OPTIONS) | set(UNET_OPTIONS))
    assert {"--model", "--data", "--out", "--width", "--strategy", "--set"} <= general
    # The refusal reads the same groups the help shows.
    args = cli.build_parser().parse_args(_train())
    assert {s for a in args.gan_only for s in a.option_strings} == set(GAN_OPTIONS)
    assert {s for a in args.unet_only for s in a.option_strings} == set(UNET_OPTIONS)


def test_every_model_specific_option_says_which_model_reads_it():
    args = cli.build_parser().parse_args(_train())
    for action in args.gan_only:
        assert re.match(r"(unconditional )?(GANs|(gan|dcgan|wgan|cwgan-gp|progan)(, |:))",
                        action.help), action.option_strings
    for action in args.unet_only:
        assert action.help.startswith("U-Net: "), action.option_strings


@pytest.mark.parametrize("flag", sorted(UNET_OPTIONS))
@pytest.mark.parametrize("model", ["cwgan-gp", "dcgan"])
def test_a_unet_option_with_a_gan_is_refused(flag, model, tmp_path, capsys, no_keras):
    out = tmp_path / "run"
    assert cli.main(_train(flag, *UNET_OPTIONS[flag], model=model, out=str(out))) == 2
    err = capsys.readouterr().err
    [line] = err.strip().splitlines()
    assert "Traceback" not in err
    assert line.startswith("mrigan-tf train: error: ")
    assert flag in line and f"--model {model}" in line and "U-Net option" in line
    assert not out.exists()


@pytest.mark.parametrize("flag", sorted(GAN_OPTIONS))
def test_a_gan_option_with_the_unet_is_refused(flag, tmp_path, capsys, no_keras):
    out = tmp_path / "run"
    assert cli.main(_train(flag, *GAN_OPTIONS[flag], model="unet", out=str(out))) == 2
    err = capsys.readouterr().err
    [line] = err.strip().splitlines()
    assert line.startswith("mrigan-tf train: error: ")
    assert flag in line and "--model unet" in line and "GAN option" in line
    assert not out.exists()


def test_each_model_accepts_its_own_and_the_general_options():
    parser = cli.build_parser()
    gan_flags = [part for flag, value in GAN_OPTIONS.items() for part in (flag, *value)]
    unet_flags = ["--unet-lr", "0.01", "--depth", "2", "--dropout", "0.2", "--no-flips"]
    general = ["--width", "4", "--set", "norm=null", "--batch-size", "8", "--no-jit",
               "--strategy", "mirrored", "--seed", "3", "--resume", "--quiet"]
    cli.refuse_the_other_models_options(parser.parse_args(_train(*gan_flags, *general)))
    cli.refuse_the_other_models_options(
        parser.parse_args(_train(*unet_flags, *general, model="unet")))


# ## Old spellings

def test_old_spellings_reach_the_new_destinations():
    parser = cli.build_parser()
    old = parser.parse_args(_train("--lr", "0.05", "--no-augment", model="unet"))
    new = parser.parse_args(_train("--unet-lr", "0.05", "--no-flips", model="unet"))
    assert old.unet_lr == new.unet_lr == 0.05 and old.no_flips is new.no_flips is True
    assert vars(old) == vars(new)
    tstr_old = parser.parse_args(["tstr", *MINIMAL["tstr"], "--no-augment", "--lr", "0.01"])
    tstr_new = parser.parse_args(["tstr", *MINIMAL["tstr"], "--no-flips", "--lr", "0.01"])
    assert tstr_old.no_flips is tstr_new.no_flips is True and tstr_old.lr == 0.01
    # The GANs' --augment is still the DiffAugment policy, not the U-Net's flips.
    gan = parser.parse_args(_train("--augment", "translation,cutout"))
    assert gan.augment == "translation,cutout" and gan.no_flips is False


def test_help_names_the_old_spellings_beside_the_new(capsys):
    text = _help("train", capsys)
    assert "--unet-lr LR, --lr LR" in text and "--no-flips, --no-augment" in text
    assert "--no-flips, --no-augment" in _help("tstr", capsys)


# ## The options still reach the same code

def test_gan_options_reach_the_train_config(tmp_path, monkeypatch, capsys, tensorflow_keras):
    seen = {}
    _stub_module(monkeypatch, "mrigan_tf.training.runner",
                 TrainConfig=lambda **settings: settings,
                 train_gan=lambda config, out, resume, verbose: (
                     seen.update(config=config, out=out, resume=resume, verbose=verbose)
                     or (None, {"d_loss": [0.5]})))
    assert cli.main(["train", "--model", "cwgan-gp", "--data", "d", "--out", str(tmp_path),
                     "--epochs", "3", "--steps-per-epoch", "5", "--batch-size", "8",
                     "--seed", "7", "--no-jit", "--d-lr", "1e-4", "--g-lr", "2e-4",
                     "--latent-dim", "8", "--width", "4", "--n-critic", "3",
                     "--augment", "translation", "--gp-weight", "5", "--gp-every", "3",
                     "--mixed-precision", "bfloat16", "--steps-per-execution", "2",
                     "--set", "drift_weight=0.001", "--resume", "--quiet"]) == 0
    assert seen["config"] == dict(
        model="cwgan-gp", data="d", epochs=3, steps=None, steps_per_epoch=5, batch_size=8,
        seed=7, jit_compile=False, d_learning_rate=1e-4, g_learning_rate=2e-4, joint=None,
        model_options={"drift_weight": 0.001, "latent_dim": 8, "width": 4, "n_critic": 3,
                       "augment": "translation", "gp_weight": 5.0, "gp_every": 3},
        strategy="default", precision="mixed_bfloat16", steps_per_execution=2)
    assert seen["resume"] is True and seen["verbose"] == 0
    assert "trained cwgan-gp" in capsys.readouterr().out


def test_small_data_options_reach_the_train_config(tmp_path, monkeypatch, tensorflow_keras):
    seen = {}
    _stub_module(monkeypatch, "mrigan_tf.training.runner",
                 TrainConfig=lambda **settings: settings,
                 train_gan=lambda config, out, resume, verbose: (
                     seen.update(config=config) or (None, {"d_loss": [0.5]})))
    assert cli.main(["train", "--model", "cwgan-gp", "--data", "d", "--out", str(tmp_path),
                     "--epochs", "1", "--loss", "ns", "--conditioning", "acgan",
                     "--acgan-weight", "0.5", "--ema-decay", "0.99", "--r1-weight", "10",
                     "--spectral-norm", "--minibatch-std", "4", "--quiet"]) == 0
    assert seen["config"]["model_options"] == {
        "loss": "ns", "conditioning": "acgan", "acgan_weight": 0.5, "ema_decay": 0.99,
        "r1_weight": 10.0, "spectral_norm": True, "minibatch_std": 4}
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(_train("--loss", "wasserstein"))


def _stub_unet_training(monkeypatch) -> dict:
    """Stand-ins for the U-Net's config and train-and-score; returns what they received."""
    seen: dict = {}
    _stub_module(monkeypatch, "mrigan_tf.training.segmentation",
                 SegmentationConfig=lambda **settings: settings)
    _stub_module(monkeypatch, "mrigan_tf.evaluation.segmentation",
                 EVALUATION_FILE="evaluation.json",
                 train_and_score_unet=lambda config, out, resume, verbose: seen.update(config=config))
    return seen


@pytest.mark.parametrize("spelling", [["--lr", "0.05", "--no-augment"],
                                      ["--unet-lr", "0.05", "--no-flips"]])
def test_unet_options_reach_the_segmentation_config(spelling, tmp_path, monkeypatch, capsys,
                                                    tensorflow_keras):
    seen = _stub_unet_training(monkeypatch)
    assert cli.main(["train", "--model", "unet", "--data", "d", "--out", str(tmp_path / "u"),
                     "--steps", "4", "--batch-size", "8", "--width", "4", "--depth", "2",
                     "--dropout", "0.1", "--strategy", "mirrored", "--quiet", *spelling]) == 0
    config = seen["config"]
    assert config["learning_rate"] == 0.05 and config["augment"] is False
    assert config["model_options"] == {"width": 4, "depth": 2, "dropout": 0.1}
    assert (config["steps"], config["batch_size"], config["strategy"]) == (4, 8, "mirrored")
    assert config["seed"] == 0 and config["jit_compile"] is None
    assert "trained unet" in capsys.readouterr().out


def test_unet_defaults_reach_the_segmentation_config(tmp_path, monkeypatch, tensorflow_keras):
    seen = _stub_unet_training(monkeypatch)
    assert cli.main(_train(model="unet", out=str(tmp_path / "u"))) == 0
    assert seen["config"]["learning_rate"] == 1e-3 and seen["config"]["augment"] is True


@pytest.mark.parametrize("flip", ["--no-augment", "--no-flips"])
def test_tstr_options_reach_run_tstr(flip, tmp_path, monkeypatch):
    seen = {}
    _stub_module(monkeypatch, "mrigan_tf.evaluation.tstr", REPORT_FILE="report.md",
                 run_tstr=lambda *args, **kwargs: seen.update(args=args, kwargs=kwargs))
    assert cli.main(["tstr", "--real", "r", "--synthetic", "s", "--out", str(tmp_path),
                     "--fractions", "0.5,1", "--lr", "0.01", "--width", "4", "--seed", "2",
                     "--seeds", "3,4", "--jit", "--overwrite", "--quiet", flip]) == 0
    assert seen["args"] == ("r", "s", str(tmp_path))
    kwargs = seen["kwargs"]
    assert kwargs["augment"] is False and kwargs["learning_rate"] == 0.01
    assert kwargs["fractions"] == [0.5, 1.0] and kwargs["model_options"] == {"width": 4}
    # --seed picks the subjects (and seeds the bootstrap); --seeds the U-Nets' repeats.
    assert (kwargs["subset_seed"], kwargs["seeds"]) == (2, [3, 4])
    assert (kwargs["jit_compile"], kwargs["overwrite"]) == (True, True)
    assert kwargs["converge"] is True and kwargs["steps"] is None
    assert kwargs["progress"] is False


def test_generate_layouts_reach_the_writer_and_list_the_writers_sources(tmp_path, monkeypatch,
                                                                        tiny_dataset):
    from mrigan_tf.synth import LAYOUT_SOURCES

    commands = next(a for a in cli.build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in commands.choices["generate"]._actions
                  if "--layouts" in a.option_strings)
    assert tuple(action.choices) == tuple(LAYOUT_SOURCES) and action.default == "real"
    seen = {}
    _stub_module(monkeypatch, "mrigan_tf.synth", write_synthetic_dataset=lambda *args, **kwargs:
                 seen.update(kwargs) or tiny_dataset)
    assert cli.main(["generate", "--run", "r", "--out", str(tmp_path / "s"), "--quiet",
                     "--layouts", "copied"]) == 0
    assert seen["layouts_from"] == "copied"


# ## --help stays fast

def test_building_the_parser_imports_neither_keras_nor_tensorflow():
    code = ("import sys; from mrigan_tf.cli import build_parser; build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'keras', 'tensorflow', 'jax'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", ("`mrigan-tf --help` must not wait for Keras; "
                                         f"building the parser imported {proc.stdout.strip()}")
