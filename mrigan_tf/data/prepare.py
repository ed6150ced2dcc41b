"""Title: Preparing a real dataset (`mrigan-tf prepare`)
Description: raw volumes of BraTS, OASIS-1, PPMI, BIDS or image folders -> a dataset directory.

The same four steps for every source:

1. the source's reader *discovers* its subjects (files and classes, no voxel read yet);
   ``--limit N`` keeps N of them, taken in turn from each class;
2. worker processes read and slice one subject each (``mrigan_tf.data.readers.common``);
   each subject's slices are spooled to disk as they arrive, so the main process holds
   one subject at a time, never the whole set;
3. subjects are split train/val/test *by subject*, stratified by class
   (``mrigan_tf.data.split``);
4. the dataset is written in the contract, atomically: a single ``dataset.npz`` +
   ``meta.json``, or, with ``shard_slices``, the sharded form below.

The sharded form, for sets too large to hold in memory at once: ``OUT/shards.json``
lists ``OUT/shard-00000/``, ``OUT/shard-00001/``, ... and each shard is itself a complete
dataset directory in the contract (``load_dataset`` reads it). A subject is never cut
between shards, and the split is decided over all subjects before any shard is written, so
shards can be used one at a time or together without leakage.

Broken input: without ``skip_bad`` the first broken subject stops the run with a
``DataError`` naming the file; with it, broken subjects are skipped and listed (returned
in the report and recorded in ``meta.json`` under ``skipped_subjects``). Either way,
``--out`` holds a finished dataset or nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mrigan_tf.arguments import positive_int
from mrigan_tf.errors import DataError, MriganError

SHARDS_FILE = "shards.json"
_SPOOL = ".subjects"


@dataclasses.dataclass
class PrepareReport:
    """What ``prepare_dataset`` wrote, and what it had to leave out."""

    out: Path
    source: str
    num_slices: int
    num_subjects: int
    class_names: list[str]
    counts: dict[str, dict[str, int]]       # split -> class -> slices
    shards: list[str]                       # shard folder names; empty for a single file
    skipped: list[Any]                      # BadSubject: broken, with --skip-bad
    excluded: list[dict[str, str]]          # left out on purpose (no CDR, other cohort, ...)

    def summary(self) -> str:
        per_split = ", ".join(f"{s}: " + "/".join(str(v) for v in c.values())
                              for s, c in self.counts.items())
        text = (f"wrote {self.num_slices} slices of {self.num_subjects} {self.source} subjects "
                f"to {self.out} ({'/'.join(self.class_names)} per split: {per_split})")
        if self.shards:
            text += f" in {len(self.shards)} shards (see {SHARDS_FILE})"
        if self.excluded:
            text += f"; {len(self.excluded)} subjects excluded by design (meta.json)"
        if self.skipped:
            text += f"\nskipped {len(self.skipped)} bad subjects:\n" + "\n".join(
                f"  {b}" for b in self.skipped)
        return text


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 16 or size > 256 \
            or size & (size - 1):
        raise MriganError(f"--size must be a power of two between 16 and 256 "
                          f"(64 is the default, 128 for more detail), got {size}")


def prepare_dataset(source: str, src: str | os.PathLike, out: str | os.PathLike, size: int = 64,
                    limit: int | None = None, skip_bad: bool = False, workers: int | None = None,
                    seed: int = 0, *, overwrite: bool = False, progress: bool = True,
                    shard_slices: int | None = None,
                    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                    slice_step: int = 1, min_brain_fraction: float | None = None,
                    **source_options) -> PrepareReport:
    """Prepare ``src`` (a raw ``source`` dataset) into the dataset directory ``out``.

    ``source`` is one of brats, oasis, ppmi, bids, folder; ``source_options`` are the
    reader's options (see each reader class in ``mrigan_tf.data.readers``).
    """
    from mrigan_tf.data.preprocessing import SlicingParams
    from mrigan_tf.data.readers import get_reader
    from mrigan_tf.data.readers.common import read_subjects, limit_subjects

    _check_size(size)
    if limit is not None and limit < 1:
        raise MriganError(f"--limit must be at least 1, got {limit}")
    if shard_slices is not None and shard_slices < 1:
        raise MriganError(f"--shard-slices must be at least 1, got {shard_slices}")
    if slice_step < 1:
        raise MriganError(f"--slice-step must be at least 1, got {slice_step}")
    reader = get_reader(source, **source_options)
    out = Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        # Fail before minutes of reading, not after.
        raise DataError(out, "output already exists; choose another --out or pass --overwrite")
    params = SlicingParams(size=size, slice_step=slice_step)
    if min_brain_fraction is not None:
        params.min_brain_fraction = min_brain_fraction

    inventory = reader.discover(Path(src))
    subjects = limit_subjects(inventory.subjects, limit)

    from mrigan_tf.atomic import atomic_directory

    with atomic_directory(out, overwrite=overwrite) as tmp:
        spool = tmp / _SPOOL
        spool.mkdir()
        done: dict[int, dict[str, Any]] = {}

        def keep(index: int, subject, slices) -> None:
            layouts = {} if slices.layouts is None else {"layout": slices.layouts}
            np.savez(spool / f"{index:06d}.npz", images=slices.images, masks=slices.masks,
                     labels=slices.labels, slice_index=slices.slice_index, **layouts)
            labels = np.asarray(slices.labels)
            done[index] = {
                "subject": subject.id,
                "slices": int(labels.size),
                "class": (int(subject.label) if subject.label is not None
                          else int(labels.max(initial=0))),
                "slices_per_class": {name: int(np.sum(labels == k))
                                     for k, name in enumerate(inventory.class_names)},
                **{k: v for k, v in subject.facts.items() if k != "convention"},
                "files": dict(subject.files),
            }

        skipped = read_subjects(reader, subjects, params, keep, workers=workers,
                                skip_bad=skip_bad, progress=progress,
                                desc=f"preparing {source}")
        if not done:
            raise DataError(src, f"no subject could be prepared ({len(skipped)} skipped); "
                            "first problem: " + (str(skipped[0]) if skipped else "none found"))

        from mrigan_tf.data.split import split_subjects

        order = sorted(done)
        ids = [done[i]["subject"] for i in order]
        assignment = split_subjects(ids, [done[i]["class"] for i in order], split_fractions,
                                    seed=seed)
        from mrigan_tf import __version__

        meta = {
            "class_names": list(inventory.class_names),
            "image_size": size,
            "source": reader.source,
            **inventory.meta,
            "seed": seed,
            "package_version": __version__,
            "src": str(Path(src).resolve()),
            "reader_options": {k: (list(v) if isinstance(v, tuple) else v)
                               for k, v in dataclasses.asdict(reader).items() if k != "source"},
            "preprocessing": params.as_dict(),
            "split_fractions": list(split_fractions),
            "limit": limit,
            "subjects": [dict(done[i], split=assignment[done[i]["subject"]]) for i in order],
            "skipped_subjects": [b.as_dict() for b in skipped],
            "excluded_subjects": list(inventory.excluded),
        }
        counts, shards = _write_from_spool(tmp, spool, order, done, assignment, meta, out,
                                           shard_slices)
        shutil.rmtree(spool)
    return PrepareReport(out=out, source=reader.source,
                         num_slices=sum(done[i]["slices"] for i in order),
                         num_subjects=len(order), class_names=list(inventory.class_names),
                         counts=counts, shards=shards, skipped=skipped,
                         excluded=list(inventory.excluded))


def _write_from_spool(tmp: Path, spool: Path, order: list[int], done: dict, assignment: dict,
                      meta: dict, out: Path, shard_slices: int | None):
    """Assemble the spooled subjects into one dataset, or into shards of whole subjects."""
    from mrigan_tf.data.contract import (
        SPLITS, PreparedDataset, validate_dataset, write_dataset_files,
    )

    def build(indices: list[int], shard_meta: dict) -> PreparedDataset:
        parts = {"images": [], "masks": [], "labels": [], "subjects": [], "split": [],
                 "layout": []}
        for i in indices:
            with np.load(spool / f"{i:06d}.npz") as z:
                n = len(z["labels"])
                parts["images"].append(z["images"].astype(np.float32))
                parts["masks"].append(z["masks"].astype(np.uint8))
                parts["labels"].append(z["labels"].astype(np.int32))
                if "layout" in z.files:
                    parts["layout"].append(z["layout"].astype(np.uint8))
            sid = done[i]["subject"]
            parts["subjects"].append(np.full(n, sid, dtype=f"<U{max(1, len(sid))}"))
            parts["split"].append(np.full(n, assignment[sid], dtype="<U5"))
        # Layouts only when every subject has one (a reader writes them for all or none).
        layouts = parts.pop("layout")
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        if len(layouts) == len(indices):
            arrays["layout"] = np.concatenate(layouts)
        return PreparedDataset(meta=shard_meta, **arrays)

    total = {s: {c: 0 for c in meta["class_names"]} for s in SPLITS}
    if shard_slices is None:
        ds = build(order, meta)
        validate_dataset(ds, out)
        write_dataset_files(ds, tmp)
        return ds.counts(), []

    groups, current, filled = [], [], 0
    for i in order:
        current.append(i)
        filled += done[i]["slices"]
        if filled >= shard_slices:
            groups.append(current)
            current, filled = [], 0
    if current:
        groups.append(current)
    names = []
    for k, group in enumerate(groups):
        name = f"shard-{k:05d}"
        ds = build(group, dict(meta, shard=k, num_shards=len(groups),
                               subjects=[dict(done[i], split=assignment[done[i]["subject"]])
                                         for i in group]))
        validate_dataset(ds, out / name)
        (tmp / name).mkdir()
        write_dataset_files(ds, tmp / name)
        for s, per_class in ds.counts().items():
            for c, v in per_class.items():
                total[s][c] += v
        names.append(name)
        del ds
    index = {k: v for k, v in meta.items() if k != "subjects"}
    index.update(shards=names, counts=total,
                 num_slices=sum(done[i]["slices"] for i in order), subjects=meta["subjects"])
    (tmp / SHARDS_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return total, names


def list_shards(path: str | os.PathLike) -> list[Path]:
    """The shard directories of a sharded dataset, in order (each one loads with load_dataset)."""
    root = Path(path)
    index = root / SHARDS_FILE
    if not index.is_file():
        raise DataError(index, "missing; not a sharded dataset (a single one has dataset.npz)")
    try:
        names = json.loads(index.read_text())["shards"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(index, f"not a valid shard index ({exc})") from None
    return [root / name for name in names]


# ## The command line (`mrigan-tf prepare SOURCE ...`), wired in by mrigan_tf.cli

def _common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", required=True, help="the downloaded dataset's directory")
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument("--size", type=int, default=64, help="slice size in pixels: 64 (default) or 128")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="prepare only N subjects (taken in turn from each class), to try things out")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip broken subjects and list them at the end, instead of stopping "
                        "at the first one")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes (default: one per CPU core)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subject split (default 0)")
    p.add_argument("--slice-step", type=positive_int, default=1,
                   help="keep every Nth informative axial slice (default 1: all)")
    p.add_argument("--shard-slices", type=positive_int, default=None,
                   help="write shards of about N slices (whole subjects) instead of one "
                        "dataset.npz, for sets too large for memory")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


_SOURCE_HELP = {
    "brats": ("BraTS 2020/2021/2023 glioma MRI with tumor segmentations",
              "BraTS subject folders (BraTS2021_XXXXX/BraTS2021_XXXXX_{t1,t1ce,t2,flair,seg}"
              ".nii.gz or BraTS-GLI-XXXXX-XXX/...-{t1n,t1c,t2w,t2f,seg}.nii.gz) -> axial slices "
              "with a tumor mask; class per slice (tumor shown or not); split by subject."),
    "oasis": ("OASIS-1 T1 MRI, classes from CDR (0 healthy, >0 dementia)",
              "OASIS-1 sessions (OAS1_XXXX_MR1/PROCESSED/MPRAGE/T88_111/*_t88_masked_gfc.hdr) "
              "with the demographics sheet (oasis_cross-sectional.csv); class from CDR; masks "
              "empty, or a tissue map from FSL_SEG with --tissue."),
    "ppmi": ("PPMI T1 MRI, classes PD / Control",
             "PPMI NIfTI volumes under SRC/<subject>/... with the study's CSV of subject -> "
             "cohort (PD or Control; other cohorts are excluded); masks empty."),
    "bids": ("an OpenNeuro / BIDS dataset, class from a participants.tsv column",
             "BIDS tree (sub-*/[ses-*/]anat/*_T1w.nii.gz) with participants.tsv; the class is "
             "the participants.tsv column you name with --class-column; masks empty."),
    "folder": ("2-D image folders SRC/<class>/*.png|jpg (Kaggle brain-tumor sets)",
               "Image folders SRC/<class>/*.png|jpg|tif, with optional masks in a twin tree "
               "SRC/masks/<class>/ (same names) or next to the image as NAME_mask.*."),
}


def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``SOURCE`` sub-commands and their options to the ``prepare`` parser."""
    sub = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    parsers = {}
    for source, (short, long) in _SOURCE_HELP.items():
        p = sub.add_parser(source, help=short, description=long + " Written atomically; "
                           "the first broken subject stops the run unless --skip-bad.")
        _common_arguments(p)
        parsers[source] = p

    p = parsers["brats"]
    p.add_argument("--modalities", default="t1ce",
                   help="one modality, or several as channels: t1, t1ce, t2, flair "
                        "(2023 names t1n, t1c, t2w, t2f accepted); e.g. t1ce,flair (default t1ce)")
    p.add_argument("--region", default="whole_tumor",
                   choices=["whole_tumor", "tumor_core", "enhancing_tumor"],
                   help="tumor region of the mask (default whole_tumor)")
    p.add_argument("--labels", default="auto", choices=["auto", "2021", "2023"],
                   help="label convention: 2021 (enhancing = 4) or 2023 (enhancing = 3); "
                        "auto reads it from the file names")

    p = parsers["oasis"]
    p.add_argument("--demographics", default=None,
                   help="the demographics sheet (default: oasis_cross-sectional*.csv found in --src)")
    p.add_argument("--tissue", default=None, choices=["csf", "gm", "wm"],
                   help="mask = this FSL_SEG tissue class (default: no mask)")
    p.add_argument("--image", default="masked", choices=["masked", "unmasked"],
                   help="the brain-masked (default) or the unmasked T88 image")
    p.add_argument("--missing-cdr", default="exclude", choices=["exclude", "healthy"],
                   help="sessions with no CDR (young controls): exclude (default) or count as healthy")

    p = parsers["ppmi"]
    p.add_argument("--csv", default=None,
                   help="CSV of subject -> cohort (default: the single CSV file in --src)")
    p.add_argument("--subject-column", default=None, help="subject column (default: Subject or PATNO)")
    p.add_argument("--group-column", default=None,
                   help="cohort column (default: Group, COHORT_DEFINITION or COHORT)")
    p.add_argument("--series", default=None,
                   help="keep only volumes whose path contains this text, e.g. MPRAGE")

    p = parsers["bids"]
    p.add_argument("--class-column", required=True,
                   help="participants.tsv column that gives the class, e.g. group or diagnosis")
    p.add_argument("--classes", default=None,
                   help="class values to keep, in label order, e.g. control,patient "
                        "(default: every value, sorted)")
    p.add_argument("--suffix", default="T1w", help="BIDS suffix of the anatomical image (T1w)")

    p = parsers["folder"]
    p.add_argument("--classes", default=None,
                   help="class folders to use, in label order (default: every folder, sorted)")
    p.add_argument("--masks", default=None,
                   help="root of the masks twin tree (default: SRC/masks when it exists)")
    p.add_argument("--subject-pattern", default=None,
                   help="regular expression searched in each file name; its first matching "
                        "group (or the whole match) names the patient, so that one patient's "
                        "images stay in one split")
    parser.set_defaults(func=cmd_prepare)


_COMMON = {"src", "out", "size", "limit", "skip_bad", "workers", "seed", "slice_step",
           "shard_slices", "overwrite", "quiet", "command", "source", "func"}


def cmd_prepare(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k not in _COMMON and v is not None}
    report = prepare_dataset(args.source, args.src, args.out, size=args.size, limit=args.limit,
                             skip_bad=args.skip_bad, workers=args.workers, seed=args.seed,
                             overwrite=args.overwrite, progress=not args.quiet,
                             shard_slices=args.shard_slices, slice_step=args.slice_step,
                             **options)
    print(report.summary())
    return 0
