#!/usr/bin/env python3
"""The Fréchet distance as pytorch-fid computes FID (`pytorch_fid/fid_score.py`:
`calculate_activation_statistics` = np.mean / np.cov(rowvar=False), then
`calculate_frechet_distance` with scipy.linalg.sqrtm and its eps fallback), on random float32
feature sets, written here so CI needs no Python. numpy 1.26.4, scipy 1.11.4.

Writes tests/fixtures/eval/frechet.json: per case the two feature sets and the distance.

    python -m venv venv && venv/bin/pip install numpy==1.26.4 scipy==1.11.4
    venv/bin/python tests/scripts/gen_frechet.py
"""

import json
from pathlib import Path

import numpy as np
import scipy
from scipy import linalg

assert np.__version__ == "1.26.4" and scipy.__version__ == "1.11.4"


def frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    # pytorch-fid 0.3.0's calculate_frechet_distance, step for step.
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("imaginary component")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def stats(act):
    a = act.astype(np.float64)
    return np.mean(a, axis=0), np.cov(a, rowvar=False)


rng = np.random.default_rng(2024)
cases = []
for name, d, n1, n2 in [("full_rank", 16, 40, 50), ("rank_deficient", 24, 12, 60)]:
    mix = rng.normal(size=(d, d)).astype(np.float32) / np.sqrt(d)
    a = (rng.normal(size=(n1, d)) @ mix).astype(np.float32)
    b = (rng.normal(loc=0.3, scale=1.2, size=(n2, d)) @ mix.T + 0.1).astype(np.float32)
    distance = frechet(*stats(a), *stats(b))
    cases.append({"name": name, "a": a.tolist(), "b": b.tolist(), "distance": distance})

out = Path(__file__).resolve().parents[1] / "fixtures/eval/frechet.json"
out.write_text(json.dumps({"cases": cases}))
print(out, [(c["name"], c["distance"]) for c in cases])
