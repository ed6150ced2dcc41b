"""Estimate each notebook's wall-clock at the gpu profile on a Colab T4, from its FLOPs.

No T4 was at hand: the figure is arithmetic, stated so that it can be checked and redone.

- **FLOPs.** Forward multiply-adds per sample of every network a notebook trains, counted from
  the layers the package builds at the gpu profile (Dense: kernel size; Conv2D: kernel size x
  output pixels; Conv2DTranspose: kernel size x input pixels), 2 FLOPs each. A GAN's
  generator step with ``n`` critic steps costs, per sample, ``n (G + 6 D [+ 6 D for the
  gradient penalty's double backward]) + 3 G + 3 D`` (a critic step: G forward, D forward and
  backward on a real and a fake batch; a generator step: G and D forward and backward); a
  U-Net or classifier step 3 forward passes' worth.
- **Rate.** ``--tflops`` effective fp32 TFLOP/s (default 2.0: a quarter of the T4's 8.1 peak,
  which its 70 W limit does not sustain and which 64-px convolutions and 4x4 feature maps
  use poorly), plus ``--step-ms`` of fixed cost per optimizer step (kernel launches, the
  Python loop) and ``--epoch-s`` per epoch (sample grid, backup, plots).
- **Fixed costs.** A fresh Colab runtime per notebook builds the 40-subject phantom
  (``--phantom-s``, CPU work: notebook 01's cpu-profile run is the measurement) and the
  notebooks' CPU-side measurements (``EVAL_S``: MS-SSIM, nearest neighbours, reports).

Usage: ``python docs/estimate_t4.py [--tflops 2.0]`` prints minutes per notebook.
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

from mrigan_tf.metrics.domain_classifier import build_domain_classifier
from mrigan_tf.models.cwgan_gp import build_conditional_critic, build_conditional_generator
from mrigan_tf.models.dcgan import build_dcgan_discriminator, build_dcgan_generator
from mrigan_tf.models.gan import build_mlp_discriminator, build_mlp_generator
from mrigan_tf.models.progan import make_progan
from mrigan_tf.models.unet import build_unet
from mrigan_tf.models.wgan import build_wgan_critic
from mrigan_tf.profiles import notebook_settings

#: CPU-side seconds besides training (measurements, reports, exports), rough.
EVAL_S = {"01_preprocessing": 60, "02_vanilla_gan": 60, "03_dcgan": 60, "04_wgan": 60,
          "05_conditional_wgan_gp": 60, "06_unet_segmentation": 60, "07_evaluation": 180,
          "08_synthetic_dataset": 120,
          # 09: the reference model's synthetic slices and a C2ST; 10: a C2ST and an FID per loss.
          "09_progan": 120, "10_loss_functions": 240}


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def forward_macs(model: keras.Model) -> int:
    """Multiply-adds of one sample's forward pass through the Dense and convolution layers."""
    total = 0
    for layer in _leaf_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = layer.output.shape
        pixels = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
        if isinstance(layer, keras.layers.Conv2DTranspose):
            pixels //= int(np.prod(layer.strides))
        total += int(np.prod(kernel.shape)) * pixels
    return total


def gan_step_flops(g, d, batch: int, n_critic: int = 1, penalty: bool = False) -> float:
    G, D = 2 * forward_macs(g), 2 * forward_macs(d)
    critic = G + 6 * D + (6 * D if penalty else 0)
    return batch * (n_critic * critic + 3 * G + 3 * D)


def workloads() -> dict[str, dict[str, float]]:
    """Per notebook at the gpu profile: training FLOPs, optimizer steps, epochs."""
    out = {"01_preprocessing": {"flops": 0, "steps": 0, "epochs": 0}}
    s = notebook_settings("02_vanilla_gan", "gpu")
    shape = (s["SIZE"], s["SIZE"], 1)
    units = [s["UNITS"], 2 * s["UNITS"], 4 * s["UNITS"]]
    mlp = gan_step_flops(build_mlp_generator(shape, s["LATENT_DIM"], units),
                         build_mlp_discriminator(shape, units[::-1]), s["BATCH_SIZE"])
    out["02_vanilla_gan"] = {"flops": 3 * s["STEPS"] * mlp, "steps": 3 * 2 * s["STEPS"],
                             "epochs": 3 * s["STEPS"] // s["STEPS_PER_EPOCH"]}
    s = notebook_settings("03_dcgan", "gpu")
    g = build_dcgan_generator(shape, s["LATENT_DIM"], s["WIDTH"])
    dcgan = gan_step_flops(g, build_dcgan_discriminator(shape, s["WIDTH"]), s["BATCH_SIZE"])
    out["03_dcgan"] = {"flops": s["STEPS"] * dcgan, "steps": 2 * s["STEPS"],
                       "epochs": s["STEPS"] // s["STEPS_PER_EPOCH"]}
    s = notebook_settings("04_wgan", "gpu")
    wgan = gan_step_flops(g, build_wgan_critic(shape, s["WIDTH"]), s["BATCH_SIZE"], s["N_CRITIC"])
    steps = s["STEPS"] + len(s["CLIP_VALUES"]) * s["CLIP_STEPS"]
    out["04_wgan"] = {"flops": steps * wgan, "steps": steps * (1 + s["N_CRITIC"]) + 2 * s["TOY_STEPS"],
                      "epochs": steps // s["STEPS_PER_EPOCH"]}
    s = notebook_settings("05_conditional_wgan_gp", "gpu")
    cw = gan_step_flops(build_conditional_generator(s["SIZE"], 2, s["LATENT_DIM"], width=s["WIDTH"]),
                        build_conditional_critic(s["SIZE"], 2, 2, width=s["WIDTH"]),
                        s["BATCH_SIZE"], s["N_CRITIC"], penalty=True)
    out["05_conditional_wgan_gp"] = {"flops": s["STEPS"] * cw, "steps": s["STEPS"] * (1 + s["N_CRITIC"]),
                                     "epochs": s["STEPS"] // s["STEPS_PER_EPOCH"]}
    # TSTR arms: real and real + synthetic at each fraction, synthetic once; one seed.
    s = notebook_settings("06_unet_segmentation", "gpu")
    unet = 6 * forward_macs(build_unet(s["SIZE"], depth=4, width=s["WIDTH"]))
    steps = s["EPOCHS"] * s["STEPS_PER_EPOCH"] + (2 * len(s["TSTR_FRACTIONS"]) + 1) * s["TSTR_STEPS"]
    out["06_unet_segmentation"] = {"flops": steps * s["BATCH_SIZE"] * unet, "steps": steps,
                                   "epochs": s["EPOCHS"] + steps // 100}
    s = notebook_settings("07_evaluation", "gpu")
    unet = 6 * forward_macs(build_unet(s["SIZE"], depth=4, width=s["UNET_WIDTH"]))
    classifier = 6 * forward_macs(build_domain_classifier(s["SIZE"], 2))
    tstr = (2 * len(s["TSTR_FRACTIONS"]) + 1) * s["TSTR_STEPS"]
    # The notebook's domain classifier and the report's, batch 64.
    out["07_evaluation"] = {"flops": tstr * s["BATCH_SIZE"] * unet + 2 * s["CLASSIFIER_STEPS"] * 64 * classifier,
                            "steps": tstr + 2 * s["CLASSIFIER_STEPS"], "epochs": tstr // 100}
    s = notebook_settings("08_synthetic_dataset", "gpu")
    g = build_conditional_generator(s["SIZE"], 2, 64, width=16)   # the reference model
    out["08_synthetic_dataset"] = {"flops": s["N"] * 2 * forward_macs(g), "steps": s["N"] // 256,
                                   "epochs": 0}
    # ProGAN: every step counted at full size (an upper bound: the early phases run at 4-32
    # px), one critic update a step with the gradient penalty.
    s = notebook_settings("09_progan", "gpu")
    progan = make_progan((s["SIZE"], s["SIZE"], 2), latent_dim=s["LATENT_DIM"], width=s["WIDTH"],
                         phase_steps=s["PHASE_STEPS"], fade_steps=s["FADE_STEPS"])
    pg = gan_step_flops(progan.generator, progan.critic, s["BATCH_SIZE"], 1, penalty=True)
    out["09_progan"] = {"flops": s["STEPS"] * pg, "steps": 2 * s["STEPS"],
                        "epochs": s["STEPS"] // s["STEPS_PER_EPOCH"]}
    # One conditional model per loss: N_CRITIC critic updates for the Wasserstein losses (the
    # penalty's double backward for wgan-gp only), one for the others.
    s = notebook_settings("10_loss_functions", "gpu")
    g = build_conditional_generator(s["SIZE"], 2, s["LATENT_DIM"], width=s["WIDTH"])
    d = build_conditional_critic(s["SIZE"], 2, 2, width=s["WIDTH"])
    flops = steps = 0
    for loss in s["LOSSES"]:
        n_critic = s["N_CRITIC"] if loss.startswith("wgan") else 1
        flops += s["STEPS"] * gan_step_flops(g, d, s["BATCH_SIZE"], n_critic,
                                             penalty=loss == "wgan-gp")
        steps += s["STEPS"] * (1 + n_critic)
    out["10_loss_functions"] = {"flops": flops, "steps": steps,
                                "epochs": len(s["LOSSES"]) * s["STEPS"] // s["STEPS_PER_EPOCH"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tflops", type=float, default=2.0)
    parser.add_argument("--step-ms", type=float, default=8.0)
    parser.add_argument("--epoch-s", type=float, default=1.0)
    parser.add_argument("--phantom-s", type=float, default=90.0)
    args = parser.parse_args()
    print(f"{'notebook':26s} {'TFLOP':>7s} {'steps':>7s} {'minutes':>8s}")
    for name, w in workloads().items():
        seconds = (w["flops"] / (args.tflops * 1e12) + w["steps"] * args.step_ms / 1e3
                   + w["epochs"] * args.epoch_s + args.phantom_s + EVAL_S[name])
        print(f"{name:26s} {w['flops'] / 1e12:7.1f} {w['steps']:7.0f} {seconds / 60:8.1f}")


if __name__ == "__main__":
    main()
