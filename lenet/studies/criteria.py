"""Which feature maps of a level to transfer: four ways to rank a source net's maps, best first.

The paper proposes (Conclusions) to "adapt saliency, as in Optimal Brain Damage, or to adapt
mutual information, as in DBT (Pratt 1993)" to choose the maps to keep. A map of C1 or C3 is
one output channel (its kernels and bias); a map of C5 is one of its 120 units.
  saliency     Optimal Brain Damage (LeCun, Denker & Solla 1990): sum over the map's weights of
               1/2 h_kk w_k^2, with OBD's own h_kk: the Gauss-Newton (Levenberg-Marquardt)
               diagonal of the source loss, 2/(N D) sum over samples and outputs of
               (d output / d w_k)^2 -- positive, and what OBD back-propagates; computed exactly
               (per-sample Jacobians, torch.func), cheap for C1/C3 and chunked for C5
  hessian      a named variant, not OBD: the same sum with the exact Hessian diagonal (second
               derivatives included, so it can be negative), estimated with Hutchinson's
               estimator (mean of z * Hz over Rademacher probes z; double backprop)
  taylor       first-order Taylor (Molchanov et al. 2017): |mean over samples of the map's
               activation * dLoss/dactivation|, on the source task
  mutual-info  mutual information (nats) between the map's spatially pooled activation,
               in MI_BINS equal-frequency bins, and the new classes, on the k training samples
  random       a seeded random order
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lenet.config import LAYERS, LEVELS
from lenet.config import TANH_A, TANH_S
from lenet.core.model import LeNet5

CRITERIA = ("saliency", "taylor", "mutual-info", "random")  # what the partial study compares by default
VARIANTS = CRITERIA + ("hessian",)                           # every criterion a study may name
MAPS = {"c1": 6, "c3": 16, "c5": 120}  # the levels whose maps can be kept one by one
MI_BINS = 4  # equal-frequency bins of a pooled activation: k=1 gives 20 samples, 5 per bin


def check_level(level: str) -> int:
    """Index of a partially transferable level in LEVELS."""
    if level not in MAPS:
        raise ValueError(f"level must be one of {', '.join(MAPS)} (got {level!r})")
    return LEVELS.index(level)


def map_rows(model: LeNet5, level: str, maps) -> dict[str, torch.Tensor]:
    """For each parameter of the level, the rows (first dimension) that belong to `maps`."""
    check_level(level)
    maps = torch.as_tensor(sorted(maps), dtype=torch.long)
    if level == "c3":  # kernels are C3_TABLE's 60 connections; connection r feeds map index[r] // 6
        owner = model.c3.index // model.c3.in_maps
        return {"kernels": torch.nonzero(torch.isin(owner, maps)).flatten(), "bias": maps}
    return {"weight": maps, "bias": maps}


def _forward(model: LeNet5, x: torch.Tensor, capture: str | None = None):
    """The net with plain ops (twice differentiable, unlike the fast kernels); optionally the
    activation of layer `capture` as well."""
    h, caught = x, None
    for name in LAYERS:
        layer = getattr(model, name)
        pre = F.conv2d(h, layer.weight, layer.bias) if name == "c1" else model.pre_activation(name, h)
        h = TANH_A * torch.tanh(TANH_S * pre)
        if name == capture:
            caught = h
    return h, caught


class _Plain(torch.nn.Module):
    """The net through `_forward`'s plain ops, as a module (for torch.func.functional_call)."""

    def __init__(self, model: LeNet5):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _forward(self.model, x)[0]


def _level_params(model: LeNet5, level: str) -> dict[str, torch.nn.Parameter]:
    return dict(getattr(model, level).named_parameters())


def saliency(model: LeNet5, x, y, codes, level: str, chunk: int = 32) -> np.ndarray:
    """OBD saliency of each map of `level` on (x, y) of the source task, with OBD's positive
    Gauss-Newton diagonal (the loss is F.mse_loss: the mean over N samples x D outputs)."""
    from torch.func import functional_call, jacrev, vmap
    model = _copy(model, level)
    params = {k: v.detach() for k, v in _level_params(model, level).items()}

    plain = _Plain(model)

    def outputs(p, xi):  # one sample's D outputs as a function of the level's parameters
        prefixed = {f"model.{level}.{k}": v for k, v in p.items()}
        return functional_call(plain, prefixed, (xi.unsqueeze(0),)).squeeze(0)

    diag = {k: torch.zeros_like(v) for k, v in params.items()}
    for i in range(0, len(x), chunk):
        jac = vmap(jacrev(outputs), in_dims=(None, 0))(params, x[i:i + chunk])  # {k: (B, D, *shape)}
        for k, j in jac.items():
            diag[k] += (j ** 2).sum((0, 1))
    n_out = codes.shape[1]
    sal = {k: 0.5 * (2.0 / (len(x) * n_out)) * d * params[k] ** 2 for k, d in diag.items()}
    return _per_map(model, level, sal)


def hessian(model: LeNet5, x, y, codes, level: str, probes: int = 64, seed: int = 0) -> np.ndarray:
    """The saliency sum with the exact Hessian diagonal of the source loss (Hutchinson's estimate):
    a variant, not OBD (it can be negative away from a minimum)."""
    model = _copy(model, level)
    params = _level_params(model, level)
    names = list(params)
    out, _ = _forward(model, x)
    loss = F.mse_loss(out, codes[y])
    grads = torch.autograd.grad(loss, [params[k] for k in names], create_graph=True)
    g = torch.Generator().manual_seed(seed)
    diag = [torch.zeros_like(params[k]) for k in names]
    for _ in range(probes):
        z = [torch.randint(0, 2, params[k].shape, generator=g).float() * 2 - 1 for k in names]
        hz = torch.autograd.grad(sum((gr * zi).sum() for gr, zi in zip(grads, z)), [params[k] for k in names],
                                 retain_graph=True)
        for d, zi, h in zip(diag, z, hz):
            d += zi * h / probes
    sal = {k: 0.5 * d * params[k].detach() ** 2 for k, d in zip(names, diag)}
    return _per_map(model, level, sal)


def _per_map(model: LeNet5, level: str, per_weight: dict[str, torch.Tensor]) -> np.ndarray:
    return np.array([sum(float(per_weight[k][rows].sum()) for k, rows in map_rows(model, level, [m]).items())
                     for m in range(MAPS[level])])


def taylor(model: LeNet5, x, y, codes, level: str) -> np.ndarray:
    """|mean over samples of activation * dLoss/dactivation| per map of `level`, source task."""
    model = _copy(model, level)  # the level's parameters need grad, so its activation does
    out, act = _forward(model, x, capture=level)
    act.retain_grad()
    ((out - codes[y]) ** 2).mean(1).sum().backward()  # each sample's own loss, so the grad is per sample
    per_sample = (act * act.grad).flatten(2).sum(2) if act.dim() == 4 else act * act.grad  # (B, maps)
    return per_sample.mean(0).abs().detach().numpy().astype(np.float64)


@torch.no_grad()
def mutual_info(model: LeNet5, x, y, level: str, bins: int = MI_BINS) -> np.ndarray:
    """MI between each map's pooled activation and the class label y, on (x, y)."""
    idx = check_level(level)
    pooled = model.forward_to(x, idx + 1).flatten(2).mean(2).numpy()  # (N, maps)
    y = np.asarray(y)
    classes = np.unique(y)
    out = np.zeros(pooled.shape[1])
    for m in range(pooled.shape[1]):
        v = pooled[:, m]
        edges = np.quantile(v, np.arange(1, bins) / bins)
        b = np.searchsorted(edges, v, side="right")  # ties share a bin, so a constant map carries 0 nats
        joint = np.zeros((bins, len(classes)))
        np.add.at(joint, (b, np.searchsorted(classes, y)), 1.0)
        joint /= joint.sum()
        pb, pc = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
        nz = joint > 0
        out[m] = float((joint[nz] * np.log(joint[nz] / (pb @ pc)[nz])).sum())
    return out


def random_scores(level: str, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(MAPS[level]).astype(np.float64)


def ranking(scores) -> list[int]:
    """Every map, most important first (ties: lower index first)."""
    return [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")]


def spearman(a, b) -> float:
    """Rank correlation of two score vectors (average ranks for ties)."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v), dtype=float)
    for u in np.unique(v):  # ties get their mean rank
        tie = v == u
        r[tie] = r[tie].mean()
    return r


def _copy(model: LeNet5, level: str) -> LeNet5:
    """A copy whose only trainable parameters are the level's."""
    out = LeNet5(n_outputs=model.f6.out_features)
    out.load_state_dict(model.state_dict())
    out.requires_grad_(False)
    getattr(out, level).requires_grad_(True)
    return out
