"""SPADE (mrigan_tf.models.spade): the normalization's known answers, layout dependence,
masks that are exactly their layouts' tumor classes, shapes, and a few training steps.

Tiny shapes throughout: 16 px, width 8, batch 4, layouts of three classes (background,
brain, lesion; the lesion is the mask). TensorFlow and JAX agree on SPADE's forward pass
in tests/test_jax_backend.py (its subprocesses); the JAX training step is not in the suite:
its XLA compilation takes minutes on a loaded 2-core CPU (`KERAS_BACKEND=jax mrigan-tf train
--model spade` then `generate` were run by hand: both finish, the masks equal the layouts').
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from conftest import SQUARES_LESION
from mrigan_tf.cli import main
from mrigan_tf.data.contract import load_dataset
from mrigan_tf.data.layout import condition_map
from mrigan_tf.errors import DataError
from mrigan_tf.models.losses import discriminator_feature_matching_loss
from mrigan_tf.models.spade import SPADE, ConditionMap, make_spade
from mrigan_tf.training.runner import TrainConfig, train_gan

SIZE, WIDTH, BATCH, LAYOUT_CLASSES, LESION = 16, 8, 4, 3, SQUARES_LESION


def toy_layouts() -> np.ndarray:
    """Four layouts: a background border around brain; slices 1 and 2 hold a lesion square."""
    layout = np.ones((BATCH, SIZE, SIZE, 1), np.uint8)
    layout[:, :2] = layout[:, -2:] = layout[:, :, :2] = layout[:, :, -2:] = 0
    layout[1, 4:9, 5:10] = LESION
    layout[2, 8:12, 3:7] = LESION
    return layout


def toy_images(layout: np.ndarray) -> np.ndarray:
    """What the layouts look like: background -1, brain 0, lesion bright."""
    return np.select([layout == 0, layout == 1], [-1.0, 0.0], 0.8).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return make_spade((SIZE, SIZE, 1), num_layout_classes=LAYOUT_CLASSES, mask_classes=[LESION],
                      latent_dim=8, width=WIDTH, seed=0)


def one_hot(layout: np.ndarray, classes: int = LAYOUT_CLASSES) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[layout[..., 0]]


# ## The normalization: known answers

@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_with_zero_modulation_spade_is_the_plain_normalization(norm):
    rng = np.random.default_rng(0)
    x = rng.normal(1.5, 2.0, (BATCH, SIZE // 2, SIZE // 2, 6)).astype(np.float32)
    layer = SPADE(hidden=4, norm=norm, epsilon=1e-5)
    condition = one_hot(toy_layouts())
    layer([x, condition])                     # builds; the layout is 2x the features' size
    axes = (1, 2) if norm == "instance" else (0, 1, 2)
    normalized = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    for conv in (layer.gamma, layer.beta):
        conv.kernel.assign(np.zeros(conv.kernel.shape, np.float32))
        conv.bias.assign(np.zeros(conv.bias.shape, np.float32))
    out = keras.ops.convert_to_numpy(layer([x, condition], training=True))
    np.testing.assert_allclose(out, normalized, atol=1e-4)
    # Constant modulation: gamma = 1, beta = 0.5 everywhere -> 2 * normalized + 0.5.
    layer.gamma.bias.assign(np.ones(6, np.float32))
    layer.beta.bias.assign(np.full(6, 0.5, np.float32))
    out = keras.ops.convert_to_numpy(layer([x, condition], training=True))
    np.testing.assert_allclose(out, 2.0 * normalized + 0.5, atol=1e-4)


def test_modulation_differs_where_the_layouts_differ_and_only_near_there():
    layer = SPADE(hidden=4, norm="instance")
    x = np.zeros((2, SIZE, SIZE, 5), np.float32)
    a = toy_layouts()[:2].copy()
    b = a.copy()
    b[:, 4:7, 4:7] = LESION                   # where b differs from a
    layer([x, one_hot(a)])
    gamma_a, beta_a = (keras.ops.convert_to_numpy(t) for t in layer.modulation(one_hot(a)))
    gamma_b, beta_b = (keras.ops.convert_to_numpy(t) for t in layer.modulation(one_hot(b)))
    changed = (a != b)[..., 0]
    # Two 3x3 convolutions see 2 pixels away: beyond that the modulation cannot tell them apart.
    near = np.zeros_like(changed)
    for dr in range(-2, 3):
        for dc in range(-2, 3):
            near |= np.roll(changed, (dr, dc), axis=(1, 2))
    for ta, tb in ((gamma_a, gamma_b), (beta_a, beta_b)):
        difference = np.abs(ta - tb).max(axis=-1)
        assert np.all(difference[changed] > 1e-6)
        np.testing.assert_array_equal(difference[~near], 0.0)


def test_condition_map_packs_layout_and_class():
    layouts = toy_layouts()
    labels = np.array([0, 1, 1, 0])
    condition = condition_map(layouts, labels, LAYOUT_CLASSES)
    assert condition.dtype == np.int32 and condition.shape == layouts.shape
    decoded = keras.ops.convert_to_numpy(ConditionMap(LAYOUT_CLASSES, 2)(condition))
    assert decoded.shape == (BATCH, SIZE, SIZE, LAYOUT_CLASSES + 2)
    np.testing.assert_array_equal(decoded[..., :LAYOUT_CLASSES], one_hot(layouts))
    np.testing.assert_array_equal(decoded[..., LAYOUT_CLASSES:],
                                  np.broadcast_to(np.eye(2)[labels][:, None, None], (BATCH, SIZE, SIZE, 2)))


def test_feature_matching_known_answer():
    real = [np.zeros((2, 3), np.float32), np.ones((2, 4, 4, 1), np.float32)]
    fake = [np.full((2, 3), 0.5, np.float32), np.full((2, 4, 4, 1), 4.0, np.float32)]
    # Layer means of |difference|: 0.5 and 3.0, averaged over the two layers.
    assert float(discriminator_feature_matching_loss(real, fake)) == pytest.approx(1.75)


# ## The model: shapes, masks, refusals

def test_samples_have_the_image_shape_and_their_layouts_masks(model):
    layouts = toy_layouts()
    images, masks = model.sample_pairs(layouts, seed=1)
    assert images.shape == (BATCH, SIZE, SIZE, 1) and np.all(np.abs(images) <= 1.0)
    assert masks.dtype == np.uint8 and masks.shape == layouts.shape
    np.testing.assert_array_equal(masks, (layouts == LESION).astype(np.uint8))
    # The classes default to "mask shown"; the same seed gives the same images.
    np.testing.assert_array_equal(model.conditions(layouts) // LAYOUT_CLASSES,
                                  np.array([0, 1, 1, 0])[:, None, None, None] + 0 * layouts)
    np.testing.assert_array_equal(model.sample(layouts=layouts, seed=1), images)
    assert not np.array_equal(model.sample(layouts=layouts, seed=2), images)
    # From its bank of layouts (a training run's sample grids), cycled to n.
    with pytest.raises(ValueError, match="pass layouts"):
        model.sample(4)
    model.layout_bank = (layouts[1:3], np.array([1, 1]))
    np.testing.assert_array_equal(model.sample(3, seed=1),
                                  model.sample(layouts=layouts[[1, 2, 1]], seed=1))
    model.layout_bank = None
    # Another layout, another image: the generator reads its layout.
    moved = layouts.copy()
    moved[1] = layouts[2]
    assert not np.allclose(model.sample(layouts=moved, labels=[0, 1, 1, 0], seed=1)[1], images[1])


def test_multiscale_discriminator_shapes(model):
    outputs = model.discriminator([toy_images(toy_layouts()), model.conditions(toy_layouts())])
    shapes = [tuple(o.shape) for o in outputs]
    # Per scale: three feature maps, then the patch logits; the second scale at half size.
    assert shapes == [(BATCH, 8, 8, WIDTH), (BATCH, 4, 4, 2 * WIDTH), (BATCH, 4, 4, 4 * WIDTH),
                      (BATCH, 4, 4, 1),
                      (BATCH, 4, 4, WIDTH), (BATCH, 2, 2, 2 * WIDTH), (BATCH, 2, 2, 4 * WIDTH),
                      (BATCH, 2, 2, 1)]
    assert tuple(model.discriminate(toy_images(toy_layouts()),
                                    model.conditions(toy_layouts())).shape) == (BATCH, 16 + 4)


@pytest.mark.parametrize("layouts,labels,words", [
    (toy_layouts()[..., 0], None, "shape (N, 16, 16, 1)"),
    (toy_layouts() + 3, None, "layout values [3, 4, 5]"),
    (toy_layouts(), [0, 1], "one class per layout"),
    (toy_layouts(), [0, 1, 2, 0], "classes [2]"),
])
def test_bad_layouts_and_classes_are_refused(model, layouts, labels, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        model.sample(layouts=layouts, labels=labels)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="mask_classes"):
        make_spade((SIZE, SIZE, 1), num_layout_classes=3, mask_classes=[3], width=WIDTH)
    with pytest.raises(ValueError, match="power of two >= 16"):
        make_spade((8, 8, 1), num_layout_classes=3, mask_classes=[2], width=WIDTH)
    with pytest.raises(ValueError, match="norm"):
        SPADE(norm="layer")


# ## Training and generation: `train --model spade` and `generate` (TensorFlow; the JAX
# forward pass is compared in tests/test_jax_backend.py)

def test_train_lowers_the_hinge_loss_and_generate_renders_real_layouts(squares_with_layouts,
                                                                        tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(model="spade", data=str(squares_with_layouts), epochs=2,
                         steps_per_epoch=12, batch_size=BATCH, samples=4,
                         model_options={"width": WIDTH, "latent_dim": 8})
    model, history = train_gan(config, run, verbose=0)
    assert set(model.metric_names) == {"d_loss", "g_loss", "g_hinge", "feature_matching",
                                       "d_real", "d_fake"}
    assert all(np.isfinite(v).all() for v in history.values())
    # At the start the discriminator cannot tell (hinge ~2); it learns to, real above fake.
    assert history["d_loss"][1] < history["d_loss"][0] < 2.2
    assert history["d_real"][1] > history["d_fake"][1]
    # The run records the layout classes it was built for; its grids render real layouts.
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["model_options"]["num_layout_classes"] == LAYOUT_CLASSES
    assert saved["train"]["model_options"]["mask_classes"] == [LESION]
    assert len(list((run / "samples").glob("*.png"))) >= 2

    out = tmp_path / "synthetic"
    assert main(["generate", "--run", str(run), "--out", str(out), "--n", "10", "--quiet"]) == 0
    synthetic = load_dataset(out)   # checks the masks against the layouts' lesion class
    assert len(synthetic) == 10 and synthetic.images.shape == (10, SIZE, SIZE, 1)
    np.testing.assert_array_equal(synthetic.masks, (synthetic.layout == LESION).astype(np.uint8))
    # Each slice's class is its layout's: the tumor slices have a lesion, the healthy none.
    shown = synthetic.masks.reshape(10, -1).max(axis=1)
    np.testing.assert_array_equal(shown, synthetic.labels)
    # By default the training layouts are flipped and warped (tests/test_layout_deformation.py;
    # at 16 px the warp moves a pixel by less than one, so most squares come out as they were).
    assert synthetic.meta["generation"]["layouts"].startswith("real: the training split's")
    train = load_dataset(squares_with_layouts).select("train")
    # --layouts copied renders them exactly as they are (the ablation).
    copied = tmp_path / "copied"
    assert main(["generate", "--run", str(run), "--out", str(copied), "--n", "10", "--quiet",
                 "--layouts", "copied"]) == 0
    copied = load_dataset(copied)
    assert copied.meta["generation"]["layouts"].startswith("copied:")
    assert all(any(np.array_equal(lay, real) for real in train.layout) for lay in copied.layout)


def test_a_dataset_without_layouts_is_refused(squares_dir, tmp_path):
    config = TrainConfig(model="spade", data=str(squares_dir), epochs=1, batch_size=BATCH)
    with pytest.raises(DataError, match="renders layouts, and this dataset has none"):
        train_gan(config, tmp_path / "run", verbose=0)
