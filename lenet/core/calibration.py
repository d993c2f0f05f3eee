"""How sure a net is: calibrated confidences from code distances (issue #22).

A net reads a character as the class whose target code is nearest its output. Confidence is a
softmax of the negative distances, -d / T, with the temperature T fitted on held-out characters
by minimising their negative log-likelihood (temperature scaling, Guo, Pleiss, Sun & Weinberger
2017, "On Calibration of Modern Neural Networks"). Calibration is measured by the expected
calibration error (ECE, Naeini, Cooper & Hauskrecht 2015; Guo et al.'s form): over equal-width
bins of the top confidence, the mean |accuracy - confidence| weighted by the share in each bin.
"""
from __future__ import annotations

import math

import torch

from lenet.config import NOT_SURE

ECE_BINS = 15  # Guo et al.'s


def confidences(d: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, C) distances to the codes -> (B, C) probabilities softmax(-d / T)."""
    return torch.softmax(-d / temperature, dim=1)


def nll(d: torch.Tensor, y: torch.Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of the labels y under softmax(-d / T)."""
    return float(torch.nn.functional.cross_entropy(-d / temperature, y))


def fit_temperature(d: torch.Tensor, y: torch.Tensor, lo: float = 1e-3, hi: float = 1e2) -> float:
    """The T that minimises the NLL of labels y (B,) given distances d (B, C): golden-section search in log T
    (the NLL is convex in 1/T, so it has one minimum)."""
    if len(d) == 0:
        raise ValueError("no characters to calibrate on")
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    for _ in range(50):  # 0.618^50 of the range: far below any visible difference
        c, e = b - g * (b - a), a + g * (b - a)
        if nll(d, y, math.exp(c)) <= nll(d, y, math.exp(e)):
            b = e
        else:
            a = c
    return math.exp((a + b) / 2)


def ece(probs: torch.Tensor, y: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Expected calibration error of (B, C) probabilities against labels y (B,), in [0, 1]."""
    conf, pred = probs.max(1)
    right = (pred == y).float()
    edges = torch.linspace(0, 1, bins + 1)
    err = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            err += float(inside.float().mean() * (right[inside].mean() - conf[inside].mean()).abs())
    return err


def report(d: torch.Tensor, y: torch.Tensor, temperature: float, not_sure: float = NOT_SURE) -> dict:
    """Accuracy, NLL, ECE, and how the "not sure" threshold splits the readings, at temperature T."""
    p = confidences(d, temperature)
    conf, pred = p.max(1)
    sure = conf >= not_sure
    right = pred == y
    return {"n": len(y), "temperature": temperature, "accuracy": float(right.float().mean()),
            "nll": nll(d, y, temperature), "ece": ece(p, y), "not_sure_share": float((~sure).float().mean()),
            "accuracy_when_sure": float(right[sure].float().mean()) if sure.any() else float("nan"),
            "accuracy_when_not_sure": float(right[~sure].float().mean()) if (~sure).any() else float("nan")}
