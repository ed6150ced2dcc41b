"""Shared fixtures: tiny synthetic NIfTI volumes and a tiny in-memory PreparedDataset.

Everything here is small (a 24x28x20 volume, a dataset of 18 slices of 16x16 pixels) so
that the data tests run in seconds. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mrigan_tf.data.contract import PreparedDataset

# XLA compiles without LLVM's optimizations in tests (set before TensorFlow or JAX loads;
# inherited by the JAX, distributed and notebook subprocesses): the tests' programs are tiny,
# so their run time is nothing, while their compile time was most of the JAX tests' minutes
# (Keras' JAX initializers compile one program per weight shape: a depth-2 U-Net took 57 CPU
# seconds to build at the default level, 5 at level 0). Numerics stay IEEE float32.
XLA_TEST_FLAG = "--xla_backend_optimization_level=0"
if XLA_TEST_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_TEST_FLAG}".strip()

#: One TensorFlow thread per process. The suite runs two workers on two cores, and its
#: tensors are tiny: a second intra-op thread bought no wall-clock (test_gan_models: 125 s
#: either way) and cost 9% more CPU in spinning; subprocesses and notebook kernels inherit it.
SINGLE_THREADED = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                   "OMP_NUM_THREADS": "1"}
for _name, _value in SINGLE_THREADED.items():
    os.environ.setdefault(_name, _value)

BRAIN_SHAPE = (24, 28, 20)
VOXEL_MM = 2.0
# BraTS 2021 label convention: 1 necrotic core, 2 edema, 4 enhancing rim.
NECROSIS, EDEMA, ENHANCING = 1, 2, 4
LESION_CENTER_OFFSET = (3, 2, 1)   # voxels from the volume centre
LESION_RADII = (1.5, 2.5, 4.0)     # core, enhancing rim, edema (voxels)


def ras_affine(shape=BRAIN_SHAPE, voxel_mm: float = VOXEL_MM) -> np.ndarray:
    """A RAS+ affine with isotropic voxels, centred on the volume."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -voxel_mm * (np.asarray(shape) - 1) / 2.0
    return affine


def _grid(shape):
    x, y, z = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    c = (np.asarray(shape, dtype=np.float64) - 1) / 2.0
    return x - c[0], y - c[1], z - c[2]


def synthetic_brain(shape=BRAIN_SHAPE, seed: int = 0) -> np.ndarray:
    """An ellipsoidal 'brain' with smooth contrast and a little noise; background exactly 0.

    The ellipsoid's semi-axes are 10, 12 and 8.5 voxels; every brain voxel is well above 0.
    The intensity is deliberately not symmetric under a flip, so orientation mix-ups show.
    """
    x, y, z = _grid(shape)
    r = (x / 10.0) ** 2 + (y / 12.0) ** 2 + (z / 8.5) ** 2
    rng = np.random.default_rng(seed)
    inside = 100.0 + 60.0 * (1.0 - r) + 1.5 * x + 0.7 * y + 0.3 * z + rng.normal(0.0, 3.0, shape)
    return np.where(r <= 1.0, inside, 0.0).astype(np.float32)


def synthetic_lesion_labels(shape=BRAIN_SHAPE) -> np.ndarray:
    """A BraTS-style label map: necrotic core 1, enhancing rim 4, edema 2, elsewhere 0."""
    x, y, z = _grid(shape)
    ox, oy, oz = LESION_CENTER_OFFSET
    d = np.sqrt((x - ox) ** 2 + (y - oy) ** 2 + (z - oz) ** 2)
    core, rim, edema = LESION_RADII
    labels = np.zeros(shape, dtype=np.int16)
    labels[d <= edema] = EDEMA
    labels[d <= rim] = ENHANCING
    labels[d <= core] = NECROSIS
    return labels


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Save ``data`` with nibabel (affine defaults to RAS+ 2 mm) and return the path."""
    affine = ras_affine(data.shape[:3]) if affine is None else affine
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return Path(path)


@pytest.fixture
def brain_array() -> np.ndarray:
    return synthetic_brain()


@pytest.fixture
def lesion_array() -> np.ndarray:
    return synthetic_lesion_labels()


@pytest.fixture
def brain_nifti(tmp_path, brain_array) -> Path:
    """The synthetic brain saved as a RAS+ .nii.gz."""
    return write_nifti(tmp_path / "brain_t1.nii.gz", brain_array)


@pytest.fixture
def lesion_nifti(tmp_path, lesion_array) -> Path:
    """The lesion label map (labels 0/1/2/4) saved as a RAS+ .nii.gz, aligned with brain_nifti."""
    return write_nifti(tmp_path / "brain_seg.nii.gz", lesion_array)


# The tiny dataset: 6 subjects x 3 slices; train s0-s3 (12 slices), val s4, test s5.
TINY_SIZE = 16
TINY_SUBJECTS = ("s0", "s1", "s2", "s3", "s4", "s5")
TINY_SPLIT = {"s0": "train", "s1": "train", "s2": "train", "s3": "train",
              "s4": "val", "s5": "test"}
TINY_TUMOR = {"s0", "s2", "s4"}
TINY_SLICES_PER_SUBJECT = 3


def build_tiny_dataset(size: int = TINY_SIZE, seed: int = 0) -> PreparedDataset:
    """A small valid PreparedDataset: tumor subjects have slices [healthy, tumor, tumor]."""
    rng = np.random.default_rng(seed)
    images, masks, labels, subjects, split = [], [], [], [], []
    for sid in TINY_SUBJECTS:
        for k in range(TINY_SLICES_PER_SUBJECT):
            img = rng.uniform(-1.0, 1.0, (size, size)).astype(np.float32)
            img[0, :] = -1.0  # background row
            mask = np.zeros((size, size), dtype=np.uint8)
            label = int(sid in TINY_TUMOR and k > 0)
            if label:
                r, c = rng.integers(1, size - 5, 2)
                mask[r:r + 4, c:c + 4] = 1
            images.append(img[..., None])
            masks.append(mask[..., None])
            labels.append(label)
            subjects.append(sid)
            split.append(TINY_SPLIT[sid])
    meta = {"class_names": ["healthy", "tumor"], "image_size": size, "source": "test",
            "modality": "T1 (synthetic test data)", "seed": seed}
    return PreparedDataset(images=np.stack(images).astype(np.float32),
                           masks=np.stack(masks).astype(np.uint8),
                           labels=np.asarray(labels, dtype=np.int32),
                           subjects=np.asarray(subjects, dtype=str),
                           split=np.asarray(split, dtype=str), meta=meta)


@pytest.fixture
def tiny_dataset() -> PreparedDataset:
    """A fresh, valid tiny PreparedDataset (safe to mutate in a test)."""
    return build_tiny_dataset()


@pytest.fixture
def tiny_dataset_dir(tmp_path, tiny_dataset) -> Path:
    """The tiny dataset saved in the contract under tmp_path/'tiny'."""
    from mrigan_tf.data.contract import save_dataset
    return save_dataset(tiny_dataset, tmp_path / "tiny")


# ## Toy training data and a tiny trained run (shared by the training and synthesis tests)

def build_squares_dataset(n_subjects: int = 8, slices: int = 8, size: int = 16,
                          seed: int = 0) -> PreparedDataset:
    """Class 0: blank slices; class 1: a bright square with its mask. Split by subject."""
    rng = np.random.default_rng(seed)
    n = n_subjects * slices
    images = np.full((n, size, size, 1), -1.0, np.float32)
    images += rng.uniform(0, 0.2, images.shape).astype(np.float32)
    masks = np.zeros((n, size, size, 1), np.uint8)
    labels = np.tile(np.arange(slices) % 2, n_subjects).astype(np.int32)
    for i in np.flatnonzero(labels):
        r, c = rng.integers(2, size - 7, 2)
        images[i, r:r + 5, c:c + 5] = 0.9
        masks[i, r:r + 5, c:c + 5] = 1
    subjects = np.repeat([f"toy-{s}" for s in range(n_subjects)], slices)
    split_of = {f"toy-{s}": ("test" if s == 0 else "val" if s == 1 else "train")
                for s in range(n_subjects)}
    split = np.array([split_of[s] for s in subjects])
    meta = {"class_names": ["healthy", "tumor"], "image_size": size, "source": "toy",
            "modality": "toy squares", "seed": seed}
    return PreparedDataset(images, masks, labels, subjects, split, meta)


@pytest.fixture(scope="session")
def squares_dir(tmp_path_factory) -> Path:
    from mrigan_tf.data.contract import save_dataset

    out = tmp_path_factory.mktemp("squares") / "data"
    save_dataset(build_squares_dataset(), out)
    return out


#: The layout class of the squares in ``squares_with_layouts`` (0 background, 1 brain).
SQUARES_LESION = 2


@pytest.fixture(scope="session")
def squares_with_layouts(tmp_path_factory) -> Path:
    """The toy squares with a layout: brain everywhere, the square a lesion."""
    import dataclasses

    from mrigan_tf.data.contract import save_dataset
    from mrigan_tf.data.layout import layout_meta

    toy = build_squares_dataset()
    layout = np.ones_like(toy.masks)
    layout[toy.masks == 1] = SQUARES_LESION
    toy = dataclasses.replace(toy, layout=layout, meta={
        **toy.meta, **layout_meta(["background", "brain", "lesion"], [SQUARES_LESION])})
    return save_dataset(toy, tmp_path_factory.mktemp("squares_layouts") / "data")


TINY_CWGAN = {"latent_dim": 8, "width": 8, "n_critic": 2}


@pytest.fixture(scope="session")
def tiny_cwgan_run(tmp_path_factory, squares_dir) -> Path:
    """A cwgan-gp run trained for 2 epochs of 3 steps on the toy squares."""
    from mrigan_tf.training.runner import TrainConfig, train_gan

    run = tmp_path_factory.mktemp("runs") / "cwgan"
    config = TrainConfig(model="cwgan-gp", data=str(squares_dir), epochs=2, steps_per_epoch=3,
                         batch_size=8, jit_compile=False, samples=4,
                         model_options=dict(TINY_CWGAN))
    train_gan(config, run, verbose=0)
    return run


# ## Parallel runs (`make test`: pytest-xdist, --dist loadgroup)

#: Tests marked ``spread`` are scheduled one by one (each its own group): the notebook smoke
#: runs, minutes each, would otherwise all land on one worker with the rest of their file.
SPREAD_MARK = "spread"


def pytest_configure(config):
    # One persistent XLA compilation cache for this process's JAX subprocesses: they build the
    # same small layers, and Keras' initializers compile a program per weight shape, so later
    # subprocesses load what earlier ones compiled (test_jax_backend and test_jax_run share
    # an xdist group, hence a worker and this cache).
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        config._jax_cache = tempfile.mkdtemp(prefix="mrigan-tf-jax-cache-")
        os.environ.update(JAX_COMPILATION_CACHE_DIR=config._jax_cache,
                          JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                          JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    _refuse_a_loadgroup_that_would_not_group(config)
    # Registered here too, for runs without pytest-xdist (the marks are added regardless).
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist's --dist loadgroup group")
    config.addinivalue_line("markers", f"{SPREAD_MARK}: under pytest-xdist, schedule each test "
                                       "of this function on its own instead of with its file")


#: pytest-xdist groups by writing ``Node._nodeid``; pytest 9.2 keeps the id elsewhere.
_LOADGROUP_BREAKS = {"pytest": "9.2", "xdist": "3.8.0"}


def _refuse_a_loadgroup_that_would_not_group(config):
    """On the controller, before any worker starts: a pytest that ignores pytest-xdist's
    group tags runs the suite ungrouped (each file's module fixtures built on both workers,
    about 1.3x the CPU); say so plainly instead of letting the workers crash on it."""
    if config.getoption("dist", default=None) != "loadgroup" or hasattr(config, "workerinput"):
        return
    import xdist
    from packaging.version import Version
    if (Version(pytest.__version__) >= Version(_LOADGROUP_BREAKS["pytest"])
            and Version(xdist.__version__) <= Version(_LOADGROUP_BREAKS["xdist"])):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} with pytest-xdist {xdist.__version__} ignores "
            "--dist loadgroup's groups: install the versions pyproject.toml's dev extra pins "
            "(make venv), or run with PYTEST_WORKERS=0")


def pytest_unconfigure(config):
    if getattr(config, "_jax_cache", None):
        shutil.rmtree(config._jax_cache, ignore_errors=True)
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)


@pytest.hookimpl(tryfirst=True)   # before pytest-xdist reads the groups off the marks
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup`` a test file runs whole on one worker (its module fixtures
    are built once), except the tests marked ``spread``, each of which is its own group."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        group = item.nodeid if item.get_closest_marker(SPREAD_MARK) else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


# ## Where the suite's CPU goes (`make test` prints it; robust on a shared, loaded machine)

#: How many of the costliest test files, and of the costliest tests, the summary lists.
CPU_REPORT_FILES = 25
CPU_REPORT_TESTS = 30


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its children (subprocesses, notebook
    kernels), in seconds: the finished ones, and the running ones (a notebook kernel serves
    several tests), so that each test is charged what ran during it."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    running = 0.0
    try:
        import psutil
        for child in psutil.Process().children(recursive=True):
            try:
                times = child.cpu_times()
                running += times.user + times.system
            except psutil.Error:      # gone meanwhile: counted among the finished ones
                pass
    except ImportError:
        pass
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + running


_CPU_AT_START = pytest.StashKey[float]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item.stash[_CPU_AT_START] = _cpu_seconds()
    _without_graph_rewrites()
    yield


def _without_graph_rewrites():
    """Turn Grappler (TensorFlow's graph optimizer) off in this process, now if TensorFlow
    is loaded, else as soon as it is. It rewrites each graph function before its first run:
    seconds per traced train step, which a test that runs that step a few times never earns
    back (measured: test_tstr.py with test_evaluation.py 203 -> 166 CPU-s, test_cwgan_gp.py
    152 -> 141). It does not change what a graph computes; XLA-compiled steps bypass it."""
    def turn_off(tf):
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

    if "tensorflow" in sys.modules:
        turn_off(sys.modules["tensorflow"])
    elif not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("tensorflow", turn_off))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` once the module ``name`` has been imported."""

    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)      # find the real spec (and never come back here)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then(module):
                exec_module(module)
                self.then(module)
            spec.loader.exec_module = exec_then
        return spec


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report carries the test's CPU seconds so far (setup, call and teardown,
    module fixtures included) as a user property: pytest-xdist carries it to the controller."""
    outcome = yield
    start = item.stash.get(_CPU_AT_START, None)
    if start is not None:
        outcome.get_result().user_properties.append(("cpu_s", _cpu_seconds() - start))


_CPU_BY_FILE: dict[str, float] = {}
_CPU_BY_TEST: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """On the controller: each test's CPU at its last phase (teardown) is its total."""
    if report.when == "teardown":
        cpu = dict(report.user_properties).get("cpu_s")
        if cpu is not None:
            nodeid = report.nodeid.split("@")[0]    # without pytest-xdist's group tag
            path = nodeid.split("::")[0]
            _CPU_BY_FILE[path] = _CPU_BY_FILE.get(path, 0.0) + cpu
            _CPU_BY_TEST[nodeid] = cpu


#: Set to a file path to get every test's CPU seconds as JSON (the summary lists the top few).
CPU_JSON_ENV = "MRIGAN_TF_TEST_CPU_JSON"


def pytest_terminal_summary(terminalreporter):
    if not _CPU_BY_FILE:
        return
    if os.environ.get(CPU_JSON_ENV):
        Path(os.environ[CPU_JSON_ENV]).write_text(json.dumps(
            {"files": _CPU_BY_FILE, "tests": _CPU_BY_TEST}, indent=1, sort_keys=True))
    total = sum(_CPU_BY_FILE.values())
    terminalreporter.section(f"CPU seconds per test file (total {total:.0f} s; wall-clock "
                             "durations above swing with the machine's load, these do not)")
    ranked = sorted(_CPU_BY_FILE.items(), key=lambda kv: -kv[1])[:CPU_REPORT_FILES]
    for path, cpu in ranked:
        terminalreporter.write_line(f"{cpu:8.1f} s  {100 * cpu / total:4.1f}%  {path}")
    terminalreporter.section("CPU seconds of the costliest tests (a module fixture counts "
                             "with the first test that uses it)")
    for nodeid, cpu in sorted(_CPU_BY_TEST.items(), key=lambda kv: -kv[1])[:CPU_REPORT_TESTS]:
        terminalreporter.write_line(f"{cpu:8.1f} s  {nodeid}")
