"""Title: What every dataset reader shares
Description: subjects found on disk, the parallel driver, ``--limit`` and ``--skip-bad``.

A reader knows one layout on disk (BraTS, OASIS-1, PPMI, BIDS, image folders). It works in
two steps, so that the expensive one runs in parallel and nothing is read twice:

1. ``discover(src)``: walk the directory and the study's sheet, *without reading a voxel*,
   and return an ``Inventory``: one ``Subject`` per person (its files and, where the class
   is per person, its class), the class names and what the source says about itself.
   Problems found here (a missing modality, a subject in the sheet with no images) are
   attached to the subject instead of raised, so ``--skip-bad`` can list them with the
   others.
2. ``read_subject(subject, params)``: in a worker process, load one subject's volumes and
   cut them into a ``SliceSet`` (64 or 128 px slices). Only slices travel back to the main
   process, so the full-resolution volumes of two subjects are never in memory at once per
   worker, whatever the size of the dataset.

``read_subjects`` runs step 2 over all subjects on a process pool, with a progress bar.
Without ``skip_bad`` the first broken subject stops the run with a ``DataError`` naming
the file; with it, broken subjects are collected and returned, and the run goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mrigan_tf.data.nifti import NiftiVolume, load_label_volume, load_nifti_volume
from mrigan_tf.data.layout import brain_layout
from mrigan_tf.data.preprocessing import compute_brain_mask, labels_to_mask, slice_subject
from mrigan_tf.data.workers import process_context
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.progress import progress_bar

NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclasses.dataclass
class Subject:
    """One person (or one image group) found on disk, before any voxel is read."""

    id: str
    files: dict[str, str]                   # role ("t1ce", "seg", "image", ...) -> path
    label: int | None = None                # the subject's class; None when it is per slice
    problem: tuple[str, str] | None = None  # (file, what is wrong), found while discovering
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    # 2-D sources: one entry per image of the subject (not recorded in meta.json).
    items: list[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Inventory:
    """What ``discover`` found: the subjects, the classes and the source's own metadata."""

    subjects: list[Subject]
    class_names: list[str]
    meta: dict[str, Any]
    # Subjects deliberately left out (no CDR, a cohort that is not a class, ...), with why.
    excluded: list[dict[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class BadSubject:
    """A subject that could not be prepared: which file, and what is wrong with it."""

    subject: str
    file: str | None
    problem: str

    def as_dict(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"{self.subject}: " + (f"{self.file}: " if self.file else "") + self.problem

    def error(self) -> DataError:
        return DataError(self.file or self.subject, self.problem)


class Reader(Protocol):
    """The two methods every source module implements (see the module docstring)."""

    source: str

    def discover(self, src: Path) -> Inventory: ...

    def read_subject(self, subject: Subject, params: Any) -> Any: ...


# ## Finding things on disk

def require_directory(src: str | os.PathLike, what: str) -> Path:
    """``src`` as a Path, or a ``DataError`` if it is missing, not a directory, or empty."""
    src = Path(src)
    if not src.exists():
        raise DataError(src, f"not found; --src must be the directory holding the {what}")
    if not src.is_dir():
        raise DataError(src, f"is a file; --src must be the directory holding the {what}")
    if not any(src.iterdir()):
        raise DataError(src, f"empty directory; expected the {what} here")
    return src


def strip_nifti_suffix(name: str) -> str | None:
    """``name`` without ``.nii.gz``/``.nii``, or ``None`` if it is not a NIfTI file name."""
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under ``root``, in sorted order, skipping hidden files and folders."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def read_table(path: str | os.PathLike, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV or TSV sheet (by suffix, or sniffed), as dicts of stripped strings.

    ``DataError`` naming the file when it is missing, empty, or lacks a ``required`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "sheet not found")
    if path.suffix.lower() in (".xlsx", ".xls"):
        raise DataError(path, "spreadsheets are not read directly; save the sheet as CSV "
                        "(the OASIS sheet is also distributed as oasis_cross-sectional.csv)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(path, f"cannot read the sheet as UTF-8 text ({exc})") from None
    if not text.strip():
        raise DataError(path, "empty sheet")
    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        first = text.splitlines()[0]
        delimiter = max(",;\t", key=first.count)
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; "
                        f"the sheet has {', '.join(columns) or 'no header'}")
    rows = []
    for row in reader:
        rows.append({(k or "").strip(): (v or "").strip() if isinstance(v, str) else ""
                     for k, v in row.items()})
    return rows


def pick_column(path: Path, rows: list[dict[str, str]], requested: str | None,
                candidates: Sequence[str], what: str) -> str:
    """The column to use: ``requested`` if given, else the first candidate the sheet has."""
    columns = list(rows[0].keys()) if rows else []
    if requested is not None:
        if requested not in columns:
            raise DataError(path, f"no column {requested!r} for the {what}; "
                            f"the sheet has {', '.join(columns)}")
        return requested
    for name in candidates:
        if name in columns:
            return name
    raise DataError(path, f"cannot tell which column holds the {what} (looked for "
                    f"{', '.join(candidates)}); name it with an option. "
                    f"The sheet has {', '.join(columns)}")


# ## Which subjects to run

def limit_subjects(subjects: Sequence[Subject], limit: int | None) -> list[Subject]:
    """The first ``limit`` subjects, taken in turn from each class.

    A trial run on a few subjects should see every class, so we interleave the classes
    (each in sorted order) instead of taking the first names, which could all be healthy.
    """
    ordered = sorted(subjects, key=lambda s: s.id)
    if limit is None or limit >= len(ordered):
        return ordered
    by_class: dict[Any, list[Subject]] = {}
    for s in ordered:
        by_class.setdefault(s.label, []).append(s)
    queues = [by_class[k] for k in sorted(by_class, key=lambda k: (k is None, k if k is not None else 0))]
    picked: list[Subject] = []
    while len(picked) < limit:
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return sorted(picked, key=lambda s: s.id)


# ## Reading subjects in parallel

def _read_one(job: tuple[Reader, int, Subject, Any, bool]):
    """Worker: one subject -> (index, slices, None) or (index, None, (file, problem))."""
    reader, index, subject, params, skip_bad = job
    try:
        return index, reader.read_subject(subject, params), None
    except DataError as exc:
        return index, None, (exc.path, exc.problem)
    except MriganError as exc:
        return index, None, (None, str(exc))
    except Exception as exc:
        # Real data breaks in ways nobody listed. With --skip-bad the run must survive them;
        # without it, a traceback is the most useful thing for a bug report.
        if not skip_bad:
            raise
        first = next(iter(subject.files.values()), None)
        return index, None, (first, f"unexpected {type(exc).__name__}: {exc}")


def read_subjects(reader: Reader, subjects: Sequence[Subject], params: Any,
                  on_result: Callable[[int, Subject, Any], None], workers: int | None = None,
                  skip_bad: bool = False, progress: bool = True,
                  desc: str = "preparing subjects") -> list[BadSubject]:
    """Read every subject (in ``workers`` processes) and hand each result to ``on_result``.

    ``on_result(index, subject, slices)`` runs in the calling process as results arrive
    (in any order). Returns the bad subjects when ``skip_bad``; otherwise the first bad
    subject raises its ``DataError`` and the pending subjects are cancelled.
    """

    bad: list[BadSubject] = []

    def record(subject: Subject, file: str | None, problem: str) -> None:
        item = BadSubject(subject.id, file, problem)
        if not skip_bad:
            raise item.error()
        bad.append(item)

    # Problems found while discovering need no worker: report them before any work.
    todo = []
    for index, subject in enumerate(subjects):
        if subject.problem is not None:
            record(subject, *subject.problem)
        else:
            todo.append((index, subject))

    jobs = [(reader, index, subject, params, skip_bad) for index, subject in todo]
    bar = progress_bar(total=len(jobs), desc=desc, unit="subject", disable=not progress)
    try:
        workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
        if workers == 1:
            for job in jobs:
                index, slices, problem = _read_one(job)
                _deliver(index, subjects[index], slices, problem, on_result, record)
                bar.update(1)
        else:
            pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=process_context())
            try:
                # A window of at most two subjects per worker in flight: finished results
                # are handed over and dropped, so memory does not grow with the dataset.
                queue = iter(jobs)
                running = {pool.submit(_read_one, job) for job in _take(queue, 2 * workers)}
                while running:
                    finished, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        index, slices, problem = future.result()
                        _deliver(index, subjects[index], slices, problem, on_result, record)
                        bar.update(1)
                    running |= {pool.submit(_read_one, job) for job in _take(queue, len(finished))}
                    del finished, future, slices
            except BaseException:
                # Stop at once: the subjects not yet started are not needed any more.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    finally:
        bar.close()
    return bad


def _deliver(index, subject, slices, problem, on_result, record) -> None:
    if problem is not None:
        record(subject, *problem)
    else:
        on_result(index, subject, slices)


# ## One volume, one class per subject (OASIS, PPMI, BIDS)

def slice_classified_volume(image: Any, subject_class: int, params: Any,
                            label_path: str | None = None, positive_labels: Sequence[int] = (),
                            known_labels: Sequence[int] | None = None):
    """Slices of a subject whose class is per person (every slice gets ``subject_class``).

    ``image`` is a NIfTI/Analyze path or an already loaded ``NiftiVolume``. With ``label_path`` (a tissue map, say), the mask is its ``positive_labels``; otherwise
    masks are empty. The slicing is the phantom's and BraTS's (``slice_subject``). The
    layout is background / brain, and the mask as a third class (``brain_layout``).
    """

    volume = image if isinstance(image, NiftiVolume) else load_nifti_volume(image)
    mask = None
    if label_path is not None:
        labels = load_label_volume(label_path, volume)
        mask = labels_to_mask(labels, positive_labels, known_labels=known_labels, path=label_path)
    brain = compute_brain_mask(volume.data)
    slices = slice_subject(volume, mask, params, brain_mask=brain,
                           layout_volume=brain_layout(brain, mask))
    # slice_subject's per-slice class means "lesion shown"; here the class is the person's.
    slices.labels = np.full(len(slices.labels), subject_class, dtype=np.int32)
    return slices


def _take(iterator: Iterator[Any], n: int) -> list[Any]:
    return [job for _, job in zip(range(n), iterator)]
