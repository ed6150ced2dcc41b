"""Metrics for synthetic datasets, one concept per module.

* ``frechet`` (FID) and ``kid`` (KID): distances between feature distributions;
* ``features``: the feature extractors (``domain`` CNN, default and offline; InceptionV3 with
  cached ImageNet weights), ``domain_classifier``: the healthy/tumor CNN behind them;
* ``inception_score``: the Inception Score with the domain classifier;
* ``ssim``: SSIM / MS-SSIM and pairwise diversity; ``lpips``: LPIPS-VGG (unweighted);
* ``overlap``: per-image Dice and IoU of masks;
* ``nearest_neighbour`` and ``memorization``: nearest training slices and the memorization audit;
* ``sample_quality``: the small comparison table of the GAN-walk notebooks;
* ``c2st``: the classifier two-sample test (a fixed small CNN's held-out accuracy at telling
  synthetic from real, with an exact binomial interval, and its real-vs-real floor);
* ``prdc``: precision, recall, density and coverage on k-NN manifolds of features;
* ``privacy``: distance to the closest record, NNDR and the membership-inference attack;
* ``keras_weights``: pretrained weights from the local Keras cache only, never downloaded.

``mrigan_tf.evaluation.report.evaluate_synthetic`` puts them together into a report.
"""
