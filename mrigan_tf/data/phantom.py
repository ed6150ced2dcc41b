"""The embedded default dataset: brain MRI simulated from the MNI152 template.

No real patient data can be shipped or downloaded at run time, so the default dataset is
*simulated from real anatomy*. The anatomy is the MNI ICBM 2009a nonlinear symmetric T1
template and its grey/white-matter probability maps, which the ``nilearn`` wheel ships.
Each simulated subject is that template

* under a small random affine (rotation, scaling, translation) and a random smooth
  deformation, so no two brains have the same shape;
* with a contrast jitter between grey and white matter, a smooth multiplicative bias field
  (the B1 inhomogeneity of real scanners), a global gamma, and Rician noise (the noise of
  magnitude MR images);
* for about half of the subjects, a tumor drawn in the style of a glioma on a
  contrast-enhanced T1 scan: a dark necrotic core, a bright enhancing rim, a surrounding
  hypointense edema that spreads preferentially along white matter, and a mass effect that
  pushes the neighbouring anatomy away. The mask is the whole extent (core + rim + edema),
  BraTS's "whole tumor"; the simulation keeps BraTS labels internally (1 necrosis,
  2 edema, 4 enhancing) and maps them with the same code a BraTS reader uses.

Each slice also has its layout (``mrigan_tf.data.layout``): background, CSF, grey matter,
white matter (the template's tissue maps as warped for this subject, the most probable
tissue per voxel), edema, enhancing rim, necrotic core. Its last three classes are the mask.
The layout is read off the simulation and draws nothing at random, so the images and masks
of a seed are the same with or without it.

The volumes then go through exactly the preprocessing that real volumes go through
(``mrigan_tf.data.preprocessing``). Everything is deterministic for a seed, whatever the
number of worker processes. This is a teaching stand-in for BraTS, **not patient data**.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from mrigan_tf import __version__
from mrigan_tf.data.contract import PreparedDataset, save_dataset
from mrigan_tf.data.layout import PHANTOM_LAYOUT, layout_meta, paint, tissue_layout
from mrigan_tf.data.nifti import NiftiVolume
from mrigan_tf.data.preprocessing import SlicingParams, labels_to_mask, slice_subject
from mrigan_tf.data.split import split_subjects
from mrigan_tf.data.workers import process_context
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.progress import progress_bar

CLASS_NAMES = ["healthy", "tumor"]
# BraTS 2021 label convention, used inside the simulation.
NECROSIS, EDEMA, ENHANCING = 1, 2, 4
TUMOR_LABELS = (NECROSIS, EDEMA, ENHANCING)
#: BraTS label -> the phantom's layout class (``PHANTOM_LAYOUT``); these are the mask classes.
LAYOUT_CLASSES = {EDEMA: PHANTOM_LAYOUT.index("edema"),
                  ENHANCING: PHANTOM_LAYOUT.index("enhancing rim"),
                  NECROSIS: PHANTOM_LAYOUT.index("necrotic core")}

TEMPLATE_CREDIT = (
    "MNI ICBM 2009a nonlinear symmetric template (Fonov et al., NeuroImage 2011; 2009), "
    "as shipped by nilearn. Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging "
    "Centre, Montreal Neurological Institute, McGill University."
)


@dataclasses.dataclass
class PhantomConfig:
    """Every knob of the simulation; recorded in ``meta.json``."""

    subjects: int = 40
    size: int = 64
    seed: int = 0
    tumor_fraction: float = 0.5
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    slice_spacing_mm: float = 4.0
    rotation_deg: float = 6.0
    scale_jitter: float = 0.05
    translation_mm: float = 4.0
    deformation_mm: float = 2.5
    contrast_jitter: float = 0.08
    bias_strength: tuple[float, float] = (0.05, 0.15)
    gamma_range: tuple[float, float] = (0.85, 1.15)
    noise_sigma: tuple[float, float] = (0.01, 0.035)
    edema_radius_mm: tuple[float, float] = (18.0, 32.0)

    def __post_init__(self) -> None:
        if self.subjects < 1:
            raise MriganError(f"--subjects must be at least 1, got {self.subjects}")
        if self.size < 16 or self.size > 256 or self.size & (self.size - 1):
            raise MriganError(f"--size must be a power of two between 16 and 256 "
                              f"(64 is the default, 128 for more detail), got {self.size}")
        if not 0.0 <= self.tumor_fraction <= 1.0:
            raise MriganError(f"tumor_fraction must be in [0, 1], got {self.tumor_fraction}")

    @property
    def inplane_mm(self) -> float:
        # Simulate finer than the output so that the resize step anti-aliases real detail.
        return 2.0 if self.size <= 64 else 1.0

    def slicing_params(self) -> SlicingParams:
        return SlicingParams(size=self.size)


@dataclasses.dataclass(frozen=True)
class MNITemplate:
    """The template's maps, smoothed for the working resolution, and its affine."""

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    brain: np.ndarray
    affine: np.ndarray
    wm_level: float   # mean T1 intensity of white matter, the reference for tumor contrast
    brain_centre: np.ndarray   # world mm, the pivot of each subject's affine
    brain_box: np.ndarray      # (2, 3) world mm, lowest and highest corner of the brain
    tumor_sites: np.ndarray    # (n, 3) world mm: deep cerebral white matter


def mni152_t1_path() -> Path:
    """Path of the MNI152 2009 T1 template file inside the nilearn wheel."""
    from nilearn import datasets

    path = Path(datasets.__file__).parent / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    if not path.is_file():
        raise MriganError(f"{path}: the MNI152 template is missing from this nilearn install")
    return path


@functools.lru_cache(maxsize=2)
def load_mni152(inplane_mm: float, slice_mm: float) -> MNITemplate:
    """Load the MNI152 T1, GM, WM and brain mask from nilearn's wheel (no network)."""
    try:
        from nilearn import datasets
    except ImportError as exc:  # pragma: no cover - nilearn is a hard dependency
        raise MriganError("the phantom needs nilearn (pip install nilearn)") from exc
    t1_img = datasets.load_mni152_template(resolution=1)
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=1).dataobj, dtype=np.float32)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).dataobj, dtype=np.float32)
    brain = np.asarray(datasets.load_mni152_brain_mask(resolution=1).dataobj, dtype=np.float32)
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
    t1 = t1 / np.percentile(t1[brain > 0], 99.5)
    # Partial-volume blur: what a scanner with these voxel sizes would see of the anatomy.
    sigma = (0.4 * inplane_mm, 0.4 * inplane_mm, 0.4 * slice_mm)
    t1, gm, wm = (ndimage.gaussian_filter(v, sigma) for v in (t1, gm, wm))
    wm_level = float(np.mean(t1[wm > 0.9]))
    affine = t1_img.affine.astype(np.float64)

    def world(idx: np.ndarray) -> np.ndarray:
        return idx @ affine[:3, :3].T + affine[:3, 3]

    brain_idx = np.argwhere(brain > 0.5)
    box = world(np.stack([brain_idx.min(axis=0), brain_idx.max(axis=0)]).astype(float))
    wm_world = world(np.argwhere(wm > 0.7).astype(float))
    x, y, z = wm_world.T
    deep = (z > 0) & (z < 40) & (np.abs(x) > 18) & (np.abs(x) < 50) & (y > -65) & (y < 35)
    return MNITemplate(t1=t1, gm=gm, wm=wm, brain=brain, affine=affine, wm_level=wm_level,
                       brain_centre=world(brain_idx.mean(axis=0)),
                       brain_box=np.sort(box, axis=0), tumor_sites=wm_world[deep])


def _working_grid(template: MNITemplate, inplane_mm: float, slice_mm: float,
                  margin_mm: float = 14.0) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Affine and shape of the subject's voxel grid: the brain's box plus a margin."""
    lo, hi = template.brain_box[0] - margin_mm, template.brain_box[1] + margin_mm
    spacing = np.array([inplane_mm, inplane_mm, slice_mm])
    shape = tuple(int(v) for v in np.ceil((hi - lo) / spacing) + 1)
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = lo
    return affine, shape


def _smooth_field(rng: np.random.Generator, control: tuple[int, int, int],
                  shape: tuple[int, ...]) -> np.ndarray:
    """A smooth random field with unit standard deviation at control points.

    Cubic-spline upsampling is linear and separable, so instead of ``ndimage.zoom`` on the
    whole grid we apply one small interpolation matrix per axis (5x faster).
    """
    field = rng.standard_normal(control)
    for axis, (c, n) in enumerate(zip(control, shape)):
        weights = _upsampling_matrix(c, n)                    # (n, c)
        field = np.moveaxis(np.tensordot(weights, field, axes=([1], [axis])), 0, axis)
    return field.astype(np.float32)


@functools.lru_cache(maxsize=64)
def _upsampling_matrix(coarse: int, fine: int) -> np.ndarray:
    return ndimage.zoom(np.eye(coarse), (fine / coarse, 1.0), order=3, mode="nearest")


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    # Mostly in-plane (yaw), less pitch and roll, as head positioning varies in a scanner.
    ax, ay, az = np.deg2rad(rng.uniform(-1, 1, 3) * max_deg * np.array([0.5, 0.5, 1.0]))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def simulate_subject(template: MNITemplate, config: PhantomConfig, rng: np.random.Generator,
                     has_tumor: bool
                     ) -> tuple[NiftiVolume, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """One simulated subject: (T1 volume, BraTS-style label map, brain mask, tissue layout,
    facts); the tissue layout holds ``PHANTOM_LAYOUT``'s classes 0-3 (no tumor yet).

    All coordinates are in millimetres of MNI world space. We work backwards, as image
    warping must: for each voxel of the subject, where in the template does it come from?
    """
    affine, shape = _working_grid(template, config.inplane_mm, config.slice_spacing_mm)
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1)
    p = (affine[:3, :3] @ grid + affine[:3, 3:4]).astype(np.float32)   # subject world coords

    centre = template.brain_centre

    rot = _rotation(rng, config.rotation_deg)
    scale = 1.0 + rng.uniform(-1, 1, 3) * config.scale_jitter
    shift = rng.uniform(-1, 1, 3) * config.translation_mm
    forward = rot @ np.diag(scale)                       # template -> subject (linear part)
    inverse = np.linalg.inv(forward)
    q = inverse @ (p - (centre + shift)[:, None]) + centre[:, None]
    for axis in range(3):
        q[axis] += config.deformation_mm * _smooth_field(rng, (5, 5, 5), shape).ravel()

    facts: dict[str, Any] = {"has_tumor": bool(has_tumor)}
    if has_tumor:
        # A tumor centre in deep white matter of the cerebrum, in template space.
        q_t = template.tumor_sites[rng.integers(len(template.tumor_sites))]
        c_t = forward @ (q_t - centre) + centre + shift
        r_edema = rng.uniform(*config.edema_radius_mm)
        r_core = r_edema * rng.uniform(0.45, 0.65)
        r_necrosis = r_core * rng.uniform(0.55, 0.8)   # a thin enhancing rim, as in glioblastoma
        # Mass effect: near the tumor, a subject voxel shows tissue that came from nearer
        # the centre (it was pushed outward). Strength < 1 keeps the warp invertible.
        d = p - c_t[:, None].astype(np.float32)
        push = rng.uniform(0.3, 0.6) * np.exp(-(d ** 2).sum(axis=0) / (2 * (1.2 * r_core) ** 2))
        q -= push * d
        facts.update(center_mm=[round(float(v), 1) for v in c_t],
                     radii_mm={"edema": round(r_edema, 1), "core": round(r_core, 1),
                               "necrosis": round(r_necrosis, 1)})

    vox = np.linalg.inv(template.affine)
    idx = vox[:3, :3] @ q + vox[:3, 3:4]

    def sample(volume: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(volume, idx, order=1, mode="constant",
                                       cval=0.0).reshape(shape)

    t1, gm, wm = sample(template.t1), sample(template.gm), sample(template.wm)
    brain = sample(template.brain) > 0.5
    tissue = tissue_layout(gm, wm, brain)

    j_gm, j_wm = rng.uniform(-1, 1, 2) * config.contrast_jitter
    image = t1 * (1.0 + j_gm * gm + j_wm * wm)
    labels = np.zeros(shape, dtype=np.uint8)

    if has_tumor:
        d = (p - c_t[:, None]).reshape((3,) + shape)
        axes = rng.uniform(0.8, 1.2, 3)[:, None, None, None]
        lumpiness = np.clip(_smooth_field(rng, (8, 8, 6), shape) / 2.0, -1, 1)
        r = np.sqrt(((d * axes) ** 2).sum(axis=0)) * (1.0 + 0.18 * lumpiness)
        # Edema follows white-matter tracts: it reaches further where white matter is.
        r_edema_local = r_edema * (0.7 + 0.45 * wm)
        texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.0)
        texture /= texture.std() + 1e-6
        level = template.wm_level
        edema_i = image * rng.uniform(0.68, 0.82)
        enhancing_i = level * rng.uniform(1.15, 1.35) * (1.0 + 0.08 * texture)
        necrosis_i = level * rng.uniform(0.18, 0.32) * (1.0 + 0.15 * texture)
        for radius, blur_mm, value in ((r_edema_local, 2.0, edema_i), (r_core, 1.2, enhancing_i),
                                       (r_necrosis, 1.5, necrosis_i)):
            w = _smoothstep((radius - r) / blur_mm + 0.5) * brain
            image = image * (1.0 - w) + value * w
        labels[(r < r_edema_local) & brain] = EDEMA
        labels[(r < r_core) & brain] = ENHANCING
        labels[(r < r_necrosis) & brain] = NECROSIS

    bias = np.exp(rng.uniform(*config.bias_strength) * _smooth_field(rng, (3, 3, 3), shape))
    image = np.clip(image * bias, 0.0, None) ** rng.uniform(*config.gamma_range)
    sigma = rng.uniform(*config.noise_sigma)
    image = np.sqrt((image + sigma * rng.standard_normal(shape)) ** 2
                    + (sigma * rng.standard_normal(shape)) ** 2)
    image = (image * brain).astype(np.float32)   # skull-stripped, like BraTS
    return NiftiVolume(image, affine, path=None), labels, brain, tissue, facts


def _simulate_one(args: tuple[PhantomConfig, int, np.random.SeedSequence, bool]):
    config, index, seed_seq, has_tumor = args
    template = load_mni152(config.inplane_mm, config.slice_spacing_mm)
    rng = np.random.default_rng(seed_seq)
    volume, labels, brain, tissue, facts = simulate_subject(template, config, rng, has_tumor)
    volume.path = f"phantom subject {index}"
    mask = labels_to_mask(labels, positive_labels=TUMOR_LABELS, known_labels=TUMOR_LABELS)
    slices = slice_subject(volume, mask, config.slicing_params(), brain_mask=brain,
                           layout_volume=paint(tissue, labels, LAYOUT_CLASSES))
    if not has_tumor:
        assert slices.labels.sum() == 0 and slices.masks.sum() == 0
    return index, slices, facts


#: Below this many subject-pixels (subjects x size^2), build_phantom simulates in-process
#: unless told how many workers: 6 subjects of 64 px simulate in about 13 s, about what two
#: spawned workers spend starting up.
SMALL_PHANTOM_PIXELS = 32 * 32 * 32


def build_phantom(config: PhantomConfig = PhantomConfig(), workers: int | None = None,
                  progress: bool = True) -> PreparedDataset:
    """Simulate ``config.subjects`` subjects and return them as a ``PreparedDataset``."""

    root = np.random.SeedSequence(config.seed)
    assign_seq, *subject_seqs = root.spawn(config.subjects + 1)
    n_tumor = int(round(config.tumor_fraction * config.subjects))
    order = np.random.default_rng(assign_seq).permutation(config.subjects)
    has_tumor = np.zeros(config.subjects, dtype=bool)
    has_tumor[order[:n_tumor]] = True
    jobs = [(config, i, subject_seqs[i], bool(has_tumor[i])) for i in range(config.subjects)]

    if workers is None:
        # A small phantom simulates faster here than a process pool starts (a spawned worker
        # imports NumPy and SciPy and loads the template again: seconds of CPU each).
        small = config.subjects * config.size ** 2 < SMALL_PHANTOM_PIXELS
        workers = 1 if small else min(os.cpu_count() or 1, config.subjects)
    results: dict[int, tuple] = {}
    bar = progress_bar(total=config.subjects, desc="simulating subjects", unit="subject",
                       disable=not progress)
    if workers <= 1:
        load_mni152(config.inplane_mm, config.slice_spacing_mm)
        for job in jobs:
            i, slices, facts = _simulate_one(job)
            results[i] = (slices, facts)
            bar.update(1)
    else:
        ctx = process_context()
        if ctx.get_start_method() == "fork":
            load_mni152(config.inplane_mm, config.slice_spacing_mm)  # inherited by workers
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for i, slices, facts in pool.map(_simulate_one, jobs, chunksize=1):
                results[i] = (slices, facts)
                bar.update(1)
    bar.close()

    ids = [f"phantom-{i:03d}" for i in range(config.subjects)]
    assignment = split_subjects(ids, has_tumor.astype(int).tolist(), config.split_fractions,
                                seed=config.seed)
    images, masks, layouts, labels, subjects, splits, subject_facts = [], [], [], [], [], [], []
    for i, sid in enumerate(ids):
        slices, facts = results[i]
        n = len(slices.labels)
        images.append(slices.images)
        masks.append(slices.masks)
        layouts.append(slices.layouts)
        labels.append(slices.labels)
        subjects += [sid] * n
        splits += [assignment[sid]] * n
        subject_facts.append({"subject": sid, "split": assignment[sid], "slices": n,
                              "tumor_slices": int(slices.labels.sum()), **facts})

    meta = {
        "class_names": CLASS_NAMES,
        "image_size": config.size,
        "source": "phantom",
        "modality": "T1-weighted, contrast-enhanced appearance (simulated)",
        "mask": "whole tumor (necrotic core + enhancing rim + edema)",
        **layout_meta(PHANTOM_LAYOUT, LAYOUT_CLASSES.values()),
        "seed": config.seed,
        "package_version": __version__,
        "simulated": True,
        "not_patient_data": "Simulated from the MNI152 template; contains no patient data.",
        "template_credit": TEMPLATE_CREDIT,
        "phantom": dataclasses.asdict(config),
        "preprocessing": config.slicing_params().as_dict(),
        "subjects": subject_facts,
    }
    return PreparedDataset(
        images=np.concatenate(images).astype(np.float32),
        masks=np.concatenate(masks).astype(np.uint8),
        labels=np.concatenate(labels).astype(np.int32),
        subjects=np.asarray(subjects, dtype=str),
        split=np.asarray(splits, dtype=str),
        meta=meta,
        layout=np.concatenate(layouts).astype(np.uint8),
    )


def write_phantom(out_dir: str | os.PathLike, config: PhantomConfig = PhantomConfig(),
                  workers: int | None = None, progress: bool = True,
                  overwrite: bool = False) -> PreparedDataset:
    """Build the phantom and write it, atomically, in the dataset contract."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
        # Fail before minutes of simulation, not after.
        raise DataError(out_dir, "output already exists; choose another --out or pass --overwrite")
    dataset = build_phantom(config, workers=workers, progress=progress)
    save_dataset(dataset, out_dir, overwrite=overwrite)
    return dataset
