"""Title: Layouts: the label map of a slice, from which its mask follows
Description: tissue and tumor classes per pixel, the optional ``layout`` array of a dataset.

A mask says *where the tumor is*; a layout says *what every pixel is*: background, brain
tissue, and the tumor's parts. It is what a two-stage synthesis draws first and then renders
into an image (SPADE, Park et al. 2019; brainSPADE, Fernandez et al. 2022): an image drawn
from a layout has its mask by construction, because the mask is a function of the layout,

    mask(p) = 1  if layout(p) is one of the mask classes,  else 0.

A dataset's ``layout`` is uint8 (N, H, W, 1); ``meta.json`` names its classes in order
(``layout_classes``, class 0 is always the background) and says which of them make the mask
(``layout_mask_classes``, indices: the tumor classes). ``mrigan_tf.data.contract`` checks that
the mask of every slice is exactly the mask classes of its layout.

The layouts the sources write (the ``*_LAYOUT`` lists below):

* the phantom: background, CSF, grey matter, white matter (the MNI152 tissue maps, the most
  probable tissue per voxel), edema, enhancing rim, necrotic core (its simulated glioma);
* BraTS: background, brain, edema, enhancing, necrosis (the expert segmentation); the mask
  classes follow ``--region`` (whole tumor: all three, tumor core: enhancing and necrosis);
* the other readers: background, brain, and a third class when a label map is known (OASIS's
  ``--tissue``, an image folder's lesion masks), which is then the mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

BACKGROUND, BRAIN = 0, 1
#: background / brain, for sources that know no more than the brain's extent.
BRAIN_LAYOUT = ["background", "brain"]
#: The phantom's tissue and tumor classes (``mrigan_tf.data.phantom``).
PHANTOM_LAYOUT = ["background", "CSF", "grey matter", "white matter", "edema",
                  "enhancing rim", "necrotic core"]
#: BraTS's regions inside the brain (``mrigan_tf.data.readers.brats``).
BRATS_LAYOUT = ["background", "brain", "edema", "enhancing", "necrosis"]


def layout_meta(classes: Sequence[str], mask_classes: Iterable[int]) -> dict[str, Any]:
    """The ``meta.json`` entries that describe a dataset's layouts."""
    return {"layout_classes": list(classes),
            "layout_mask_classes": sorted(int(c) for c in mask_classes)}


def mask_from_layout(layout: np.ndarray, mask_classes: Iterable[int]) -> np.ndarray:
    """The binary uint8 mask of a layout: 1 where its class is one of ``mask_classes``."""
    return np.isin(layout, np.asarray(list(mask_classes), dtype=np.int64)).astype(np.uint8)


def tissue_layout(gm: np.ndarray, wm: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Background / CSF / grey / white matter (``PHANTOM_LAYOUT`` 0-3) from probability maps.

    Inside ``brain`` each voxel takes its most probable tissue, CSF being what grey and white
    matter leave (``1 - gm - wm``); outside it is background.
    """
    csf = 1.0 - gm - wm
    tissue = 1 + np.argmax(np.stack([csf, gm, wm]), axis=0)
    return np.where(brain, tissue, BACKGROUND).astype(np.uint8)


def paint(layout: np.ndarray, label_map: np.ndarray,
          classes: Mapping[int, int]) -> np.ndarray:
    """``layout`` with every voxel whose ``label_map`` value is a key of ``classes`` set to
    that key's layout class (e.g. BraTS label 2, edema, -> layout class 2)."""
    out = layout.copy()
    for label, layout_class in classes.items():
        out[label_map == label] = layout_class
    return out


def brain_layout(brain: np.ndarray, lesion: np.ndarray | None = None) -> np.ndarray:
    """Background / brain (``BRAIN_LAYOUT``), and class 2 where ``lesion`` (a 0/1 mask) is."""
    layout = np.where(brain, BRAIN, BACKGROUND).astype(np.uint8)
    if lesion is not None:
        layout[lesion.astype(bool)] = 2
    return layout


def brain_layout_meta(lesion: str | None = None) -> dict[str, Any]:
    """``layout_meta`` of ``brain_layout``: background / brain (/ ``lesion``, the mask)."""
    if lesion is None:
        return layout_meta(BRAIN_LAYOUT, [])
    return layout_meta(BRAIN_LAYOUT + [lesion], [2])


def condition_map(layout: np.ndarray, labels: np.ndarray, num_layout_classes: int) -> np.ndarray:
    """``layout + num_layout_classes * class``, int32 (N, H, W, 1): a layout (N, H, W, 1) and
    the slices' classes (N,) packed into one integer per pixel, what a layout-conditioned
    generator takes (``mrigan_tf.models.spade``) in the place of a class label."""
    layout = np.asarray(layout)
    labels = np.asarray(labels).reshape(-1, *([1] * (layout.ndim - 1)))
    return (layout.astype(np.int32) + num_layout_classes * labels.astype(np.int32)).astype(np.int32)


def layout_problem(layout: np.ndarray, masks: np.ndarray, meta: Mapping[str, Any]) -> str | None:
    """What is wrong with a dataset's ``layout`` (given its masks and meta), or ``None``."""
    n, size = masks.shape[0], masks.shape[1]
    classes, mask_classes = meta.get("layout_classes"), meta.get("layout_mask_classes")
    if (not isinstance(classes, (list, tuple)) or len(classes) < 2
            or not all(isinstance(c, str) for c in classes)):
        return ("a layout needs meta layout_classes, the names of its classes (at least "
                f"background and one more), got {classes!r}")
    k = len(classes)
    if (not isinstance(mask_classes, (list, tuple))
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 < c < k
                       for c in mask_classes)):
        return (f"meta layout_mask_classes must list the layout classes (1..{k - 1}) that make "
                f"the mask, got {mask_classes!r}")
    if layout.dtype != np.uint8 or layout.shape != (n, size, size, 1):
        return (f"layout must be uint8 of shape ({n}, {size}, {size}, 1), "
                f"got {layout.dtype} {layout.shape}")
    bad = np.unique(layout[layout >= k])
    if bad.size:
        return (f"layout values {bad.tolist()} are outside the {k} layout classes "
                f"{list(classes)}")
    differ = mask_from_layout(layout, mask_classes) != masks
    if differ.any():
        first = int(np.flatnonzero(differ.reshape(n, -1).any(axis=1))[0])
        names = [classes[c] for c in mask_classes]
        return (f"masks differ from the mask classes {names} of the layout at "
                f"{int(differ.sum())} pixels (first in slice {first}); the mask must be "
                "derivable from the layout")
    return None
