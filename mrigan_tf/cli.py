"""The ``mrigan-tf`` command line: thin subcommands over the package.

Every subcommand explains itself with ``--help``, shows a progress bar on long work, turns
bad input into a one-line error with exit status 2, and writes its output atomically.

The file reads in three parts: what each command does (``cmd_<command>``), the options it
takes (``add_<command>_arguments``), and ``build_parser``, which gives each command the shared
flags (``--seed``, ``--jit``, ``--overwrite``, ``--quiet``) that make sense for it, as an
argparse parent parser from ``mrigan_tf.arguments``. Nothing here imports Keras or
TensorFlow before a command runs, so ``mrigan-tf --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mrigan_tf import __version__
from mrigan_tf.arguments import (comma_floats, key_value, positive_int, shared_flags,
                                 synthetic_share)
from mrigan_tf.errors import MriganError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


# ## What each command does

def cmd_phantom(args: argparse.Namespace) -> int:
    from mrigan_tf.data.phantom import PhantomConfig, write_phantom

    config = PhantomConfig(subjects=args.subjects, size=args.size, seed=args.seed)
    ds = write_phantom(args.out, config, workers=args.workers, progress=not args.quiet,
                       overwrite=args.overwrite)
    counts = ds.counts()
    summary = ", ".join(f"{s}: " + "/".join(str(v) for v in c.values()) for s, c in counts.items())
    print(f"wrote {len(ds)} slices of {args.subjects} simulated subjects to {args.out} "
          f"({'/'.join(ds.class_names)} per split: {summary})")
    return 0


def refuse_the_other_models_options(args: argparse.Namespace) -> None:
    """A U-Net option with a GAN, or a GAN option with ``--model unet``, is an error.

    Ignoring it would train something other than what was asked for, and say nothing.
    ``args.gan_only`` and ``args.unet_only`` are the actions of train's two argument groups;
    an option counts as given when its value is not its default.
    """
    if args.model == "unet":
        other, kind, see = args.gan_only, "a GAN option", "U-Net options"
    else:
        other, kind, see = args.unet_only, "a U-Net option (--model unet)", "GAN options"
    for action in other:
        if getattr(args, action.dest) != action.default:
            raise MriganError(f"{'/'.join(action.option_strings)} is {kind}; --model "
                              f"{args.model} does not use it (its options: \"{see}\" in "
                              f"`mrigan-tf train --help`)")


def _train_unet(args: argparse.Namespace) -> int:
    from mrigan_tf.evaluation.segmentation import EVALUATION_FILE, train_and_score_unet
    from mrigan_tf.training.segmentation import SegmentationConfig

    options = dict(args.set or [])
    for name in ("width", "depth", "dropout"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    config = SegmentationConfig(data=args.data, epochs=args.epochs, steps=args.steps,
                                steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
                                seed=args.seed, learning_rate=args.unet_lr or 1e-3,
                                jit_compile=args.jit, augment=not args.no_flips,
                                model_options=options, strategy=args.strategy)
    train_and_score_unet(config, args.out, resume=args.resume, verbose=0 if args.quiet else "auto")
    print(f"trained unet; run written to {args.out} (model.keras, history.csv, "
          f"loss_curves.png, {EVALUATION_FILE})")
    evaluation = Path(args.out) / EVALUATION_FILE
    if evaluation.exists():
        print(json.dumps(json.loads(evaluation.read_text()), indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    refuse_the_other_models_options(args)
    import keras

    on_jax = keras.backend.backend() == "jax"
    if args.model == "unet":
        if on_jax:
            # Keras' own fit() trains the U-Net on JAX too, but its input pipeline is tf.data.
            try:
                import tensorflow  # noqa: F401
            except ImportError:
                raise MriganError("--model unet: its input pipeline is tf.data, which needs "
                                  "TensorFlow; install tensorflow or unset KERAS_BACKEND") from None
        return _train_unet(args)
    options = dict(args.set or [])
    for name in ("latent_dim", "width", "n_critic", "augment", "gp_weight", "gp_every",
                 "label_smoothing", "feature_matching", "clip_value", "loss", "conditioning",
                 "acgan_weight", "ema_decay", "r1_weight", "spectral_norm", "minibatch_std",
                 "phase_steps", "fade_steps", "start_size", "mask_consistency",
                 "mask_segmenter"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    settings = dict(model=args.model, data=args.data, epochs=args.epochs, steps=args.steps,
                    steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
                    seed=args.seed, jit_compile=args.jit,
                    d_learning_rate=args.d_lr, g_learning_rate=args.g_lr,
                    joint=True if args.joint else None, model_options=options,
                    strategy=args.strategy,
                    precision=("float32" if args.mixed_precision is None
                               else f"mixed_{args.mixed_precision}"),
                    steps_per_execution=args.steps_per_execution)
    if on_jax:
        # The jit-compiled JAX step; nothing on this path imports TensorFlow.
        from mrigan_tf.training.jax_runner import train_gan_jax
        from mrigan_tf.training.runner import TrainConfig

        _, history = train_gan_jax(TrainConfig(**settings), args.out, resume=args.resume,
                                        progress=not args.quiet)
    else:
        from mrigan_tf.training.runner import TrainConfig, train_gan

        _, history = train_gan(TrainConfig(**settings), args.out, resume=args.resume,
                               verbose=0 if args.quiet else "auto")
    last = {k: round(float(v[-1]), 4) for k, v in history.items() if v}
    print(f"trained {args.model}{' on JAX' if on_jax else ''}; run written to {args.out} "
          f"(model.keras, samples/, history.csv, loss_curves.png); last epoch: {last}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from mrigan_tf.synth import write_synthetic_dataset

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    ds = write_synthetic_dataset(args.run, args.out, n=args.n, seed=args.seed,
                                 proportions=args.proportions, per_class=args.per_class,
                                 formats=formats, val_fraction=args.val_fraction,
                                 batch_size=args.batch_size, progress=not args.quiet,
                                 overwrite=args.overwrite, layouts_from=args.layouts)
    per_class = {name: int((ds.labels == k).sum()) for k, name in enumerate(ds.class_names)}
    print(f"wrote {len(ds)} synthetic image/mask pairs to {args.out} {per_class} "
          f"({', '.join(formats)})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mrigan_tf.evaluation.report import REPORT_MD, evaluate_synthetic

    report = evaluate_synthetic(args.real, args.synthetic, args.out, extractor=args.extractor,
                                max_images=args.max_images, seed=args.seed,
                                overwrite=args.overwrite, progress=not args.quiet)
    extractor = report["extractor"]
    print(f"evaluation written to {args.out} (report.json, {REPORT_MD}, evaluation.png); "
          f"features: {extractor['name']} ({extractor['weights']})")
    return 0


def _tstr_synthetic(values: list[str]):
    """``--synthetic DIR`` once, or ``--synthetic FRACTION=DIR`` once per fraction (strict)."""
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    sets = {}
    for text in values:
        fraction, sep, path = text.partition("=")
        try:
            key = float(fraction)
        except ValueError:
            key = None
        if not sep or key is None or not path:
            raise MriganError(f"--synthetic: give one DIR, or FRACTION=DIR once per fraction "
                              f"(strict mode), got {text!r}")
        if key in sets:
            raise MriganError(f"--synthetic: fraction {key:g} is given twice")
        sets[key] = path
    return sets


def _tstr_seeds(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise MriganError(f"--seeds: expected whole numbers separated by commas, got {text!r}") \
            from None


def cmd_tstr(args: argparse.Namespace) -> int:
    from mrigan_tf.evaluation.tstr import REPORT_FILE, run_tstr

    fixed = args.fixed_steps is not None
    run_tstr(args.real, _tstr_synthetic(args.synthetic), args.out, fractions=args.fractions,
             seeds=_tstr_seeds(args.seeds), converge=not fixed, max_steps=args.max_steps,
             eval_every=args.eval_every, patience=args.patience, min_steps=args.min_steps,
             steps=args.fixed_steps, batch_size=args.batch_size,
             subset_seed=args.seed, learning_rate=args.lr, augment=not args.no_flips,
             jit_compile=args.jit,
             model_options={"width": args.width} if args.width else None,
             synthetic_share=args.synthetic_share, overwrite=args.overwrite,
             progress=not args.quiet)
    print(f"TSTR table written to {Path(args.out) / REPORT_FILE} (and tstr.json, tstr.png)")
    return 0


def cmd_turing(args: argparse.Namespace) -> int:
    from mrigan_tf.evaluation.turing import (KEY_FILE, PAGE_FILE, format_turing_table,
                                             score_turing_answers, write_turing_page)

    if args.score:
        if args.key is None:
            raise MriganError(f"--score needs --key KEY (the {KEY_FILE} written next to the page)")
        unused = [flag for flag, value in (("--real", args.real), ("--synthetic", args.synthetic),
                                           ("--masks", args.masks)) if value]
        if unused:
            raise MriganError(f"{', '.join(unused)}: for writing a page, not with --score")
        report = score_turing_answers(args.score, args.key, out=args.out,
                                      overwrite=args.overwrite)
        print(format_turing_table(report))
        if args.out:
            print(f"report written to {args.out}")
        return 0
    missing = [flag for flag, value in (("--real", args.real), ("--synthetic", args.synthetic),
                                        ("--out", args.out)) if not value]
    if missing:
        raise MriganError(f"{', '.join(missing)} required to write a page (or score answers "
                          "with --score ANSWERS.json ... --key KEY)")
    if args.key is not None:
        raise MriganError("--key: for scoring with --score, not for writing a page")
    page = write_turing_page(args.real, args.synthetic, args.out, n=args.n, seed=args.seed,
                             masks=args.masks, overwrite=args.overwrite)
    key = Path(args.out) / KEY_FILE
    print(f"Turing test page written to {page} ({args.n} slices, {args.n // 2} real); send "
          f"readers {PAGE_FILE} only and keep {key}, the answer key; score with "
          f"`mrigan-tf turing --score ANSWERS.json ... --key {key}`")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from mrigan_tf.evaluation.compare import TABLE_MD, run_comparison

    table = run_comparison(args.config, args.out, only=args.only, overwrite=args.overwrite,
                           progress=not args.quiet)
    print(f"comparison of {len(table['rows'])} model(s) written to "
          f"{Path(args.out) / TABLE_MD} (and .csv, .json, samples.png, quality_vs_time.png)"
          + (f"; not yet evaluated: {', '.join(table['missing'])}" if table["missing"] else ""))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mrigan_tf.demo import STAGES_NOT_YET_AVAILABLE, run_demo

    out = run_demo(args.out, subjects=args.subjects, size=args.size, seed=args.seed,
                   train_minutes=args.train_minutes, max_steps=args.steps,
                   n_synthetic=args.n_synthetic, jit_compile=args.jit,
                   progress=not args.quiet, use_reference=not args.no_reference)
    generator = json.loads((out / "demo_summary.json").read_text())["generator"]
    print(f"demo written to {out}: report.md, real_vs_synthetic.png, loss_curves.png, "
          "phantom_grid.png, phantom/, run/, synthetic/, evaluation/; synthetic pairs made by "
          f"{generator['name']}")
    print("not in the demo (run it yourself): " + "; ".join(STAGES_NOT_YET_AVAILABLE))
    return 0


# ## The options of each command (the shared flags come from build_parser)

def add_phantom_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="dataset directory to create")
    parser.add_argument("--subjects", type=positive_int, default=40,
                        help="number of subjects (default 40)")
    parser.add_argument("--size", type=int, default=64,
                        help="slice size in pixels: 64 (default) or 128")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="worker processes (default: one per CPU core)")
    parser.set_defaults(func=cmd_phantom)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every model, then the GANs' and the U-Net's, each in its own group.

    The groups' actions go into the defaults (``gan_only``, ``unet_only``), where
    ``refuse_the_other_models_options`` finds them: one list, for the help and the check.
    """
    from mrigan_tf.training.distribute import STRATEGIES
    from mrigan_tf.models.choices import CONDITIONINGS, LOSS_NAMES
    from mrigan_tf.models.mixed_precision import POLICIES

    parser.add_argument("--model", required=True,
                        help="gan, dcgan, wgan, cwgan-gp, progan (the GANs), spade (renders "
                             "the dataset's layouts into images; needs a dataset with "
                             "layouts), or unet (the segmentation network)")
    parser.add_argument("--data", required=True,
                        help="dataset directory (dataset.npz + meta.json)")
    parser.add_argument("--out", required=True,
                        help="run directory to create (or continue with --resume)")
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--epochs", type=positive_int, help="number of epochs")
    length.add_argument("--steps", type=positive_int,
                        help="at least this many training steps (a GAN's: generator steps)")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=None,
                        help="training steps per epoch (default: one pass over the train split)")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="batch size (default 64)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--width", type=positive_int, default=None,
                        help="base number of filters (dcgan, wgan, cwgan-gp, progan, unet)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="tf.distribute: default (one device), mirrored (every GPU of this "
                             "machine), multiworker (several machines, GANs only; set TF_CONFIG "
                             "on each, see README). --batch-size is the global batch, split "
                             "among the replicas")
    parser.add_argument("--set", action="append", type=key_value, metavar="KEY=VALUE",
                        help="any other option of the model's factory (repeatable)")

    gan = parser.add_argument_group(
        "GAN options", "For the GANs (gan, dcgan, wgan, cwgan-gp, progan, spade); refused "
                       "with the U-Net. Unset, each GAN uses its own default.")
    mixed = [policy.removeprefix("mixed_") for policy in POLICIES if policy != "float32"]
    gan_only = (
        gan.add_argument("--d-lr", type=float, default=None,
                         help="GANs: discriminator/critic learning rate"),
        gan.add_argument("--g-lr", type=float, default=None, help="GANs: generator learning rate"),
        gan.add_argument("--latent-dim", type=positive_int, default=None,
                         help="GANs: size of the latent vector"),
        gan.add_argument("--joint", action="store_true",
                         help="unconditional GANs (gan, dcgan, wgan): train on image+mask "
                              "instead of the image alone"),
        gan.add_argument("--n-critic", type=positive_int, default=None,
                         help="wgan, cwgan-gp, progan: critic steps per generator step"),
        gan.add_argument("--clip-value", type=float, default=None,
                         help="wgan, cwgan-gp --loss wgan-clip: weight clipping bound c"),
        gan.add_argument("--loss", choices=LOSS_NAMES, default=None,
                         help="cwgan-gp: the adversarial loss (default wgan-gp; ns = "
                              "non-saturating BCE); equations in mrigan_tf/models/cwgan_gp.py"),
        gan.add_argument("--conditioning", choices=CONDITIONINGS, default=None,
                         help="cwgan-gp: how the critic sees the class: projection (default) "
                              "or acgan (an auxiliary classifier head)"),
        gan.add_argument("--acgan-weight", type=float, default=None, metavar="W",
                         help="cwgan-gp: weight of the auxiliary classification loss of "
                              "--conditioning acgan (default 1)"),
        gan.add_argument("--mask-consistency", type=float, default=None, metavar="LAMBDA",
                         help="cwgan-gp, progan: weight of the mask-consistency generator loss "
                              "(Dice + "
                              "BCE between the generated mask and --mask-segmenter's "
                              "segmentation of the generated image; "
                              "mrigan_tf/models/mask_consistency.py)"),
        gan.add_argument("--mask-segmenter", default=None, metavar="UNET_RUN",
                         help="cwgan-gp, progan --mask-consistency: a finished `mrigan-tf "
                              "train --model unet` run on the same dataset, frozen while the "
                              "GAN trains"),
        gan.add_argument("--ema-decay", type=float, default=None, metavar="D",
                         help="GANs: keep an exponential moving average of the generator's "
                              "weights with decay D (e.g. 0.999, ramped for short runs); "
                              "samples, grids and generate use it (default: off; progan "
                              "0.999)"),
        gan.add_argument("--r1-weight", type=float, default=None, metavar="GAMMA",
                         help="GANs: R1 penalty gamma/2 E||grad D(x)||^2 on real samples "
                              "(not with cwgan-gp's wgan-gp loss, which has its own penalty)"),
        gan.add_argument("--spectral-norm", action="store_const", const=True, default=None,
                         help="GANs: spectral normalization of the discriminator's layers"),
        gan.add_argument("--minibatch-std", type=positive_int, default=None, metavar="G",
                         help="GANs: minibatch standard-deviation feature in the "
                              "discriminator, groups of G samples (e.g. 4; progan: 4 "
                              "unless set)"),
        gan.add_argument("--augment", default=None, metavar="POLICY",
                         help="cwgan-gp, progan: DiffAugment policy, e.g. "
                              "translation,cutout,brightness,contrast"),
        gan.add_argument("--gp-weight", type=float, default=None,
                         help="cwgan-gp, progan: gradient penalty weight"),
        gan.add_argument("--phase-steps", type=positive_int, default=None, metavar="N",
                         help="progan: generator steps at each resolution once faded in "
                              "(and at the start size; default 500)"),
        gan.add_argument("--fade-steps", type=positive_int, default=None, metavar="N",
                         help="progan: generator steps over which each new resolution fades "
                              "in, alpha 0 -> 1 (default 500)"),
        gan.add_argument("--start-size", type=positive_int, default=None, metavar="PX",
                         help="progan: the resolution growing starts from (4, 8, ...; default "
                              "4); full size after (levels to grow) x (fade + phase steps)"),
        gan.add_argument("--gp-every", type=positive_int, default=None, metavar="K",
                         help="cwgan-gp: lazy regularization, the penalty on every K-th critic "
                              "step weighted K x gp-weight (K divides --n-critic; default 1: "
                              "every step). Faster, and a change of method: see the README, "
                              "Speed on a CPU"),
        gan.add_argument("--label-smoothing", type=float, default=None,
                         help="gan, dcgan: one-sided label smoothing"),
        gan.add_argument("--feature-matching", action="store_const", const=True, default=None,
                         help="gan, dcgan: feature-matching generator loss"),
        gan.add_argument("--mixed-precision", nargs="?", choices=mixed, const="float16",
                         default=None, metavar="{" + ",".join(mixed) + "}",
                         help="GANs: compute in float16 (the default; loss-scaled; GPUs with "
                              "tensor cores) or bfloat16 (no loss scaling; CPUs with "
                              "AVX512_BF16 or AMX, where it measured 1.35-1.45x faster, and "
                              "TPUs/recent GPUs); weights stay float32"),
        gan.add_argument("--steps-per-execution", type=positive_int, default=1,
                         help="GANs: train steps per compiled call (default 1)"),
    )

    unet = parser.add_argument_group("U-Net options (--model unet)",
                                     "Refused with a GAN model.")
    unet_only = (
        unet.add_argument("--unet-lr", "--lr", type=float, default=None, metavar="LR",
                          help="U-Net: learning rate (default 1e-3)"),
        unet.add_argument("--depth", type=positive_int, default=None,
                          help="U-Net: number of poolings"),
        unet.add_argument("--dropout", type=float, default=None,
                          help="U-Net: bottleneck dropout rate"),
        unet.add_argument("--no-flips", "--no-augment", action="store_true",
                          help="U-Net: no random flips of the training slices"),
    )
    parser.set_defaults(func=cmd_train, gan_only=gan_only, unet_only=unet_only)


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True,
                        help="run directory written by `mrigan-tf train`")
    parser.add_argument("--n", type=positive_int, default=10_000,
                        help="number of pairs in total, or per class with --per-class "
                             "(default 10000)")
    parser.add_argument("--out", required=True, help="dataset directory to create")
    parser.add_argument("--per-class", action="store_true", help="--n pairs for each class")
    parser.add_argument("--proportions", type=comma_floats, default=None,
                        help="class proportions, e.g. 0.7,0.3 (default: equal)")
    parser.add_argument("--format", default="npz",
                        help="npz (always), png, nifti; e.g. npz,png,nifti")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of pairs in the val split (0.1)")
    parser.add_argument("--batch-size", type=positive_int, default=500,
                        help="generation batch size (500)")
    # The keys of mrigan_tf.synth.LAYOUT_SOURCES (not imported here: the parser stays light).
    parser.add_argument("--layouts", choices=("real", "copied"), default="real",
                        help="layout-conditioned runs (spade): render the training split's "
                             "layouts flipped at random and elastically warped (real, the "
                             "default) or exactly as they are (copied)")
    parser.set_defaults(func=cmd_generate)


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--real", required=True,
                        help="real dataset directory (train and test splits)")
    parser.add_argument("--synthetic", required=True, help="synthetic dataset directory")
    parser.add_argument("--out", required=True, help="report directory to create")
    parser.add_argument("--extractor", choices=("domain", "inception"), default="domain",
                        help="features for FID/KID: a classifier trained on the real train "
                             "split (domain, default, offline) or InceptionV3 with ImageNet "
                             "weights from the local Keras cache (inception; falls back to "
                             "domain, and says so, when the weights are not there)")
    parser.add_argument("--max-images", type=positive_int, default=2000,
                        help="at most this many slices per set (default 2000)")
    parser.set_defaults(func=cmd_evaluate)


def add_tstr_arguments(parser: argparse.ArgumentParser) -> None:
    # Defaults live in mrigan_tf.evaluation.tstr; repeated here so --help needs no TensorFlow.
    parser.add_argument("--real", required=True, help="real dataset directory")
    parser.add_argument("--synthetic", required=True, action="append", metavar="[F=]DIR",
                        help="synthetic dataset directory; strict mode: FRACTION=DIR once per "
                             "fraction (a generator trained on just that fraction's subjects)")
    parser.add_argument("--out", required=True, help="output directory to create")
    parser.add_argument("--fractions", type=comma_floats, default=[0.1, 0.25, 1.0],
                        help="fractions of the real training subjects (default 0.1,0.25,1); "
                             "--seed picks which subjects")
    parser.add_argument("--seeds", default="0,1,2",
                        help="U-Net seeds, every arm trained once per seed (default 0,1,2): "
                             "the table gives mean +/- sd over them")
    parser.add_argument("--max-steps", type=positive_int, default=400,
                        help="at most this many steps per U-Net (default 400, sized for a "
                             "CPU; raise it on a GPU)")
    parser.add_argument("--eval-every", type=positive_int, default=50,
                        help="score the real val split every N steps (default 50)")
    parser.add_argument("--patience", type=positive_int, default=4,
                        help="stop after this many val scores without a new best; the best "
                             "weights are kept (default 4)")
    parser.add_argument("--min-steps", type=int, default=200,
                        help="val scores before this step neither count as the best nor use "
                             "up patience: a U-Net first learns to predict nothing (default "
                             "200)")
    parser.add_argument("--fixed-steps", "--steps", type=positive_int, default=None, metavar="N",
                        help="no early stopping: train every U-Net for exactly N steps "
                             "(the old equal-budget mode)")
    parser.add_argument("--batch-size", type=positive_int, default=16,
                        help="batch size (default 16)")
    parser.add_argument("--synthetic-share", type=synthetic_share, default=0.5, metavar="S",
                        help="share of synthetic slices in each real + synthetic batch "
                             "(default 0.5); 'proportional' pools both sets, so each fills "
                             "batches in proportion to its size")
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    parser.add_argument("--width", type=positive_int, default=None,
                        help="U-Net base width (default 8)")
    parser.add_argument("--no-flips", "--no-augment", action="store_true",
                        help="no random flips of the training slices")
    parser.set_defaults(func=cmd_tstr)


def add_turing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--real", help="real dataset directory (its test split is shown when "
                                       "it has one)")
    parser.add_argument("--synthetic", help="synthetic dataset directory")
    parser.add_argument("--out", help="page directory to create (turing.html, key.json); with "
                                      "--score, an optional report .json file")
    parser.add_argument("--n", type=positive_int, default=50,
                        help="slices on the page, half real, half synthetic (default 50)")
    parser.add_argument("--masks", action="store_true",
                        help="let readers show the tumor mask over each slice (key M)")
    parser.add_argument("--score", nargs="+", metavar="ANSWERS",
                        help="score these answers files (the JSON the page downloads)")
    parser.add_argument("--key", help="with --score: the key.json written next to the page")
    parser.set_defaults(func=cmd_turing)


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="TOML file listing the real dataset, the budget and "
                                       "the [[model]] entries (see configs/seed_comparison.toml)")
    parser.add_argument("--out", required=True,
                        help="output directory; run again with the same command to resume")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these models of the config (the table lists every "
                             "model evaluated so far)")
    parser.set_defaults(func=cmd_compare)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=os.path.join("runs", "demo"),
                        help="output directory (default runs/demo)")
    parser.add_argument("--subjects", type=positive_int, default=40,
                        help="phantom subjects (default 40)")
    parser.add_argument("--size", type=int, default=64, help="slice size in pixels (default 64)")
    parser.add_argument("--train-minutes", type=float, default=3.0,
                        help="time budget of the short training run in minutes (default 3)")
    parser.add_argument("--steps", type=positive_int, default=400,
                        help="at most this many generator steps in the short run (default 400)")
    parser.add_argument("--no-reference", action="store_true",
                        help="generate with the short run's model, not the reference model")
    parser.add_argument("--n-synthetic", type=positive_int, default=10_000,
                        help="synthetic pairs to generate (default 10000)")
    parser.set_defaults(func=cmd_demo)


# ## The parser

#: Each command: (its line in `mrigan-tf --help`, the description atop its own --help).
ABOUT = {
    "phantom": (
        "simulate the embedded brain-MRI dataset from the MNI152 template",
        "Simulate brain MRI subjects from the MNI152 template (random deformation, bias field, "
        "noise; about half with a tumor) and write axial slices with tumor masks as a dataset "
        "directory (dataset.npz + meta.json), split by subject. Simulated, not patient data."),
    "prepare": (
        "prepare a real dataset (BraTS, OASIS-1, PPMI, BIDS, image folders)",
        "Turn a downloaded dataset into a dataset directory (dataset.npz + meta.json), split "
        "by subject, in the same contract as the phantom. Where to register and what to "
        "download: data_scripts/README.md."),
    "train": (
        "train a GAN or the U-Net on a dataset directory (resumable run directory)",
        "Train one of the package's GANs, or the U-Net segmenter, on a prepared dataset (the "
        "train split; the U-Net is then scored on the test subjects). The run directory gets "
        "config.json, a backup after every epoch, sample grids, history.csv, loss curves and, "
        "at the end, model.keras. After an interruption, the same command with --resume "
        "continues from the last finished epoch. The GAN options and the U-Net options below "
        "each apply to their own kind of model; given with the other kind, they are refused. "
        "With KERAS_BACKEND=jax (no TensorFlow needed) every GAN trains with the "
        "jit-compiled JAX step into the same run directory; --strategy, --mixed-precision "
        "and --steps-per-execution are TensorFlow-only."),
    "generate": (
        "generate a synthetic image+mask dataset from a trained GAN run",
        "Draw N (image, mask) pairs from the generator of a run (the cwgan-gp's conditional "
        "one, or a gan/dcgan/wgan trained on image + mask, whose slices are labelled by their "
        "masks) and write them as "
        "a dataset directory in the same contract as real data (so the U-Net and the metrics "
        "use it unchanged), optionally with PNG pairs, NIfTI stacks and manifest.csv. Same "
        "run and seed: identical dataset.npz."),
    "evaluate": (
        "compare a synthetic dataset with the real one (FID/KID, IS, diversity, memorization)",
        "Evaluate a synthetic dataset against the real dataset it imitates: FID and KID with "
        "the real-vs-real floor (train vs test subjects), Inception Score, MS-SSIM / LPIPS "
        "diversity, mask statistics and a memorization audit, per class and overall. Writes "
        "report.json, report.md and evaluation.png to --out. The report names the feature "
        "extractor it used."),
    "tstr": (
        "train on synthetic, test on real: U-Nets on real, synthetic and both",
        "The experiment that says what a synthetic dataset is worth: U-Nets trained on (a) "
        "real, (b) synthetic only, (c) real + synthetic slices, at several fractions of the "
        "real training subjects, all scored on the same held-out real test subjects. Each "
        "U-Net trains until its Dice on the real val subjects stops improving (best weights "
        "kept; --fixed-steps N for an equal budget instead), once per seed: one table of "
        "tumor-slice Dice, subject Dice and healthy-slice false positives, mean +/- sd over "
        "seeds with a bootstrap 95% interval over test subjects. Writes report.md, tstr.json "
        "and tstr.png to --out."),
    "turing": (
        "a visual Turing test: readers label slices real or synthetic",
        "Write one self-contained HTML page (works offline, from a file) of --n blinded "
        "slices, half from the real test split, half synthetic, in a seeded random order; "
        "readers label each real or synthetic (R / S, arrows, M for the masks), see their "
        "score, and download their answers. The answer key goes to key.json beside the page, "
        "not into it: send readers turing.html only. With --score ANSWERS... --key KEY, score "
        "readers: accuracy with its 95% interval, sensitivity, specificity, a binomial test "
        "against chance, and Fleiss' kappa across readers."),
    "compare": (
        "train several generators on one budget and compare them in one table",
        "Train every generator a TOML config lists on the same dataset for the same budget "
        "(wall-clock minutes or steps), generate a synthetic set from each, evaluate it fully "
        "(C2ST, FID/KID with the floor, precision/recall, diversity, masks, membership "
        "inference; TSTR when the config asks), and write report.md/.csv/.json, "
        "samples.png and quality_vs_time.png (C2ST and FID over its floor at snapshots along "
        "the budget) to --out. Every stage is skipped when its output exists: a killed "
        "compare resumes with the same command, and every run directory is kept."),
    "demo": (
        "run the main job end to end on the embedded dataset",
        "The pipeline on the embedded phantom dataset: simulate the data, train the "
        "conditional WGAN-GP for a few minutes (a short run, to show training), generate a "
        "synthetic image+mask dataset with the shipped reference model (the same model "
        "trained for thousands of steps on this phantom's train subjects; the short run's "
        "model when the phantom differs or with --no-reference), evaluate it, and write "
        "pictures and report.md under --out."),
}


def build_parser() -> argparse.ArgumentParser:
    from mrigan_tf.data.prepare import add_prepare_arguments

    parser = argparse.ArgumentParser(
        prog="mrigan-tf",
        description="Synthesize labelled brain-MRI datasets (image + tumor mask) with GANs.",
        epilog="Run `mrigan-tf COMMAND --help` for the options of one command.")
    parser.add_argument("--version", action="version", version=f"mrigan-tf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, *shared: str, **reworded: str) -> argparse.ArgumentParser:
        help_line, description = ABOUT[name]
        return sub.add_parser(name, help=help_line, description=description,
                              parents=[shared_flags(*shared, **reworded)] if shared else [])

    add_phantom_arguments(command("phantom", "seed", "overwrite", "quiet",
                                  seed="random seed; same seed, same data (default 0)"))
    add_prepare_arguments(command("prepare"))  # its sources take their own --seed, --quiet...
    add_train_arguments(command("train", "seed", "jit", "quiet",
                                jit="XLA-compile the train step (default: on with a GPU, off "
                                    "on CPU, where XLA's convolutions are slower)"))
    add_generate_arguments(command("generate", "seed", "overwrite", "quiet"))
    add_evaluate_arguments(command("evaluate", "seed", "overwrite", "quiet"))
    add_tstr_arguments(command("tstr", "seed", "jit", "overwrite", "quiet"))
    add_turing_arguments(command("turing", "seed", "overwrite",
                                 seed="random seed of the slices and their order (default 0)"))
    add_compare_arguments(command("compare", "overwrite", "quiet",
                                  overwrite="redo the selected models from scratch"))
    add_demo_arguments(command("demo", "seed", "jit", "quiet"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MriganError as exc:
        print(f"mrigan-tf {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"mrigan-tf {args.command}: interrupted; no partial output was left", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
