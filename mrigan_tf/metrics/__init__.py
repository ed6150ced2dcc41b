"""Metrics: nearest-neighbour similarity (and, as they land, FID/KID, IS, SSIM, LPIPS, Dice)."""
