"""The names the command line offers for the models' options, importable without Keras
(``mrigan-tf --help`` must not import it): the cWGAN-GP's losses and conditionings."""

#: ``--loss``: the adversarial losses of ``cwgan_gp.ConditionalWGANGP`` (default first).
LOSS_NAMES = ("wgan-gp", "wgan-clip", "ns", "lsgan", "hinge")
#: The losses whose critic estimates a Wasserstein distance (5 critic steps per G step).
WASSERSTEIN_LOSSES = ("wgan-gp", "wgan-clip")
#: ``--conditioning``: how the critic sees the class (default first).
CONDITIONINGS = ("projection", "acgan")
