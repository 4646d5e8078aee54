"""Paper Sec. IV-A: learning a 1D spatially varying convolution (Eq. 5).

Ten thousand uniform random vectors ``m`` of length 30 are multiplied by a
30 x 30 matrix ``H`` whose columns are Gaussians of position-dependent offset and
width; networks learn ``m -> n = H m``. Compared: plain CNNs ``CNN(L, k, c)``,
CoordConv CNNs ``CCNN(L, k, c)`` and 1D CoordGate nets ``CG(L, k, c, p)``.

Eq. 5 as printed cannot be used literally (see ``eq5_matrix``); the choices
made here are printed with the results and discussed in docs/benchmarks.md.

Usage::

    python benchmarks/paper_1d.py                  # all configurations, 3 seeds
    python benchmarks/paper_1d.py --steps 500 --seeds 1   # a quick look
    python benchmarks/paper_1d.py --form gather --sigma literal

Prints a Markdown table and writes ``benchmarks/results/paper_1d/paper_1d*.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lib.common import results_dir

N = 30  # sample length
MODELS = ["CNN(1,7,1)", "CNN(3,7,4)", "CNN(4,7,4)", "CNN(4,7,20)", "CNN(8,7,4)", "CCNN(4,7,4)", "CG(1,7,3,2)",
          "CG(1,7,3,2)/relu", "CGrand(1,7,3,2)"]
_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}


# -- the target matrix --------------------------------------------------------------------------
def offset_and_width(u: np.ndarray, sigma: str = "corrected") -> tuple[np.ndarray, np.ndarray]:
    """Eq. 5's ``(delta(u), sigma(u))`` for pixel positions ``u``.

    For ``u < 15``: ``(1 - u/15, 0.5)``. Otherwise the printed width is
    ``0.5 (2 - u/15) + 2 (1 - u/15) = 3 - u/6``, which is 0.5 at u = 15, **zero
    at u = 18** and negative beyond (-2 at u = 30). ``sigma="corrected"``
    (default) uses ``0.5 (2 - u/15) + 2 (u/15 - 1)``, rising from 0.5 to 2, which
    matches the text's three basis kernels (delta, sigma) = (1, .5), (0, .5),
    (0, 2). ``sigma="literal"`` keeps ``|3 - u/6|`` and treats the zero width
    at u = 18 as a unit impulse.
    """
    u = np.asarray(u, dtype=np.float64)
    delta = np.where(u < 15, 1 - u / 15, 0.0)
    if sigma == "corrected":
        wide = 0.5 * (2 - u / 15) + 2 * (u / 15 - 1)
    elif sigma == "literal":
        wide = np.abs(0.5 * (2 - u / 15) + 2 * (1 - u / 15))
    else:
        raise ValueError(sigma)
    return delta, np.where(u < 15, 0.5, wide)


def eq5_matrix(form: str = "scatter", sigma: str = "corrected", normalise: bool = False) -> np.ndarray:
    """The 30 x 30 matrix ``H`` with ``n = H m`` (row: output x, column: input x').

    Printed: ``H(x, x') = exp(-(x - delta(x'))^2 / (2 sigma(x')^2))`` with the
    cases decided by ``x < 15``. Read literally every Gaussian sits near x = 0
    (delta is in [0, 1]), which is no convolution at all, so the centre is read
    as relative to the pixel: ``x - x' - delta``.

    form : "scatter"
        Column x' (the source pixel) is a Gaussian centred at ``x' + delta(x')``
        of width ``sigma(x')``: the PSF of each point, as in optics (the
        function arguments of Eq. 5).
    form : "gather"
        Row x (the output pixel) is a Gaussian centred at ``x + delta(x)`` of
        width ``sigma(x)`` (the case condition of Eq. 5, which tests x).
    normalise : bool
        Scale each Gaussian to unit sum (the paper's are peak 1; with sigma = 2
        they sum to about 5).
    """
    x = np.arange(N, dtype=np.float64)
    if form == "scatter":
        delta, sig = offset_and_width(x, sigma)  # per column
        d = x[:, None] - x[None, :] - delta[None, :]
        s = sig[None, :]
    elif form == "gather":
        delta, sig = offset_and_width(x, sigma)  # per row
        d = x[None, :] - x[:, None] - delta[:, None]
        s = sig[:, None]
    else:
        raise ValueError(form)
    with np.errstate(divide="ignore", invalid="ignore"):
        H = np.where(s > 0, np.exp(-(d**2) / (2 * np.maximum(s, 1e-12) ** 2)), (d == 0).astype(float))
    if normalise:
        H = H / H.sum(axis=0 if form == "scatter" else 1, keepdims=True)
    return H


# -- the models ---------------------------------------------------------------------------------
def _coords(n: int) -> torch.Tensor:
    return torch.linspace(-1, 1, n)


class CNN(nn.Module):
    """``L`` zero-padded 'same' Conv1d layers of kernel ``k``: ``c`` channels, the last 1; ReLU between."""

    def __init__(self, L: int, k: int, c: int, coord: bool = False) -> None:
        super().__init__()
        self.coord = coord
        extra = 1 if coord else 0
        widths = [1] + [c] * (L - 1) + [1]
        self.convs = nn.ModuleList(nn.Conv1d(widths[i] + extra, widths[i + 1], k, padding=k // 2) for i in range(L))

    def forward(self, m: torch.Tensor) -> torch.Tensor:  # (B, 1, N) -> (B, 1, N)
        x = m
        for i, conv in enumerate(self.convs):
            if self.coord:  # CoordConv: the coordinate channel is appended to every layer's input
                x = torch.cat((x, _coords(x.shape[-1]).to(x).expand(x.shape[0], 1, -1)), dim=1)
            x = conv(x)
            if i < len(self.convs) - 1:
                x = torch.relu(x)
        return x


class CG1d(nn.Module):
    """``CG(L, k, c, p)``: ``L`` conv layers (the last with ``c`` channels), each channel
    gated by a ``p``-layer MLP of the coordinate (``c`` nodes per layer, ``act``
    between), then a 1x1 convolution to one channel (paper Eq. 3 in 1D).

    The paper does not name the MLP's activation. With ReLU and only ``c = 3``
    hidden units, units often die at initialisation and the gate collapses to
    a constant (see docs/benchmarks.md), so tanh is the default here.
    ``random_code=True`` replaces the coordinate by a fixed U(-1, 1) number per
    position (the paper's ablation).
    """

    def __init__(self, L: int, k: int, c: int, p: int, random_code: bool = False, seed: int = 0,
                 act: str = "tanh") -> None:
        super().__init__()
        widths = [1] + [c] * (L - 1) + [c]
        self.convs = nn.ModuleList(nn.Conv1d(widths[i], widths[i + 1], k, padding=k // 2) for i in range(L))
        layers: list[nn.Module] = []
        width = 1
        for i in range(p):
            layers.append(nn.Linear(width, c))
            if i < p - 1:
                layers.append(_ACTIVATIONS[act]())
            width = c
        self.gate = nn.Sequential(*layers)
        self.head = nn.Conv1d(c, 1, 1)
        g = torch.Generator().manual_seed(seed)
        code = torch.rand(N, generator=g) * 2 - 1 if random_code else _coords(N)
        self.register_buffer("code", code[:, None])  # (N, 1): static, not trained

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        x = m
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = torch.relu(x)
        gate = self.gate(self.code).T[None]  # (1, c, N)
        return self.head(x * gate)


def build(name: str, seed: int) -> nn.Module:
    """A model from its name, e.g. ``CNN(4,7,4)`` or ``CG(1,7,3,2)/relu`` (gate activation)."""
    name, _, act = name.partition("/")
    act = act or "tanh"
    kind, args = name.split("(")
    nums = [int(a) for a in args.rstrip(")").split(",")]
    torch.manual_seed(seed)
    if kind == "CNN":
        return CNN(*nums)
    if kind == "CCNN":
        return CNN(*nums, coord=True)
    if kind == "CG":
        return CG1d(*nums, act=act)
    if kind == "CGrand":
        return CG1d(*nums, random_code=True, seed=seed, act=act)
    raise ValueError(name)


# -- the experiment -----------------------------------------------------------------------------
def linear_references(m_tr, n_tr, m_te, n_te, k: int = 7) -> dict:
    """Least-squares optima of two linear models with a ``k``-tap window (with bias):
    one kernel shared by all positions (what CNN(1,k,1) can reach, zero-padded), and
    one kernel per position (a locally connected layer: what a single gated
    conv layer could reach with a complete kernel basis)."""
    r = k // 2
    pad = lambda a: np.pad(a, ((0, 0), (r, r)))  # noqa: E731
    win = lambda a: np.lib.stride_tricks.sliding_window_view(pad(a), k, axis=1)  # noqa: E731  (S, N, k)
    W_tr, W_te = win(m_tr), win(m_te)
    A = np.concatenate([W_tr.reshape(-1, k), np.ones((W_tr.shape[0] * N, 1))], axis=1)
    w, *_ = np.linalg.lstsq(A, n_tr.reshape(-1), rcond=None)
    shared = np.concatenate([W_te.reshape(-1, k), np.ones((W_te.shape[0] * N, 1))], axis=1) @ w
    kernels = np.empty((N, k + 1))
    for x in range(N):
        A = np.c_[W_tr[:, x], np.ones(len(W_tr))]
        kernels[x], *_ = np.linalg.lstsq(A, n_tr[:, x], rcond=None)
    apply = lambda K: np.einsum("sxk,xk->sx", np.concatenate([W_te, np.ones((*W_te.shape[:2], 1))], axis=2), K)  # noqa: E731
    db = lambda pred: float(10 * np.log10(1.0 / np.mean((pred.reshape(n_te.shape) - n_te) ** 2)))  # noqa: E731
    return {f"shared {k}-tap kernel (least squares)": db(shared),
            f"per-position {k}-tap kernels (least squares)": db(apply(kernels))}


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((pred - target) ** 2)))


def run_one(name, data, steps, batch, seed, lr=1e-3):
    m_tr, n_tr, m_te, n_te = data
    model = build(name, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)  # default betas / eps, as in the paper
    g = torch.Generator().manual_seed(seed)
    checkpoints = {}
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(0, m_tr.shape[0], (batch,), generator=g)
        loss = torch.mean((model(m_tr[idx]) - n_tr[idx]) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in (steps // 4, steps // 2, steps):
            with torch.no_grad():
                checkpoints[step] = psnr(model(m_te), n_te)
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.inference_mode():
        for _ in range(5):
            model(m_te)
        reps = 50
        t0 = time.perf_counter()
        for _ in range(reps):
            model(m_te)
        infer_us = (time.perf_counter() - t0) / reps / m_te.shape[0] * 1e6
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"psnr": checkpoints[steps], "psnr_at": checkpoints, "params": params, "infer_us_per_sample": infer_us, "train_s": train_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20000, help="Adam steps per model (default 20000)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--form", choices=("scatter", "gather"), default="scatter")
    ap.add_argument("--sigma", choices=("corrected", "literal"), default="corrected")
    ap.add_argument("--normalise", action="store_true", help="unit-sum Gaussians instead of peak 1")
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fair timing on a shared machine)")
    ap.add_argument("--out", default=None, help="JSON file (default benchmarks/results/paper_1d/paper_1d_<form>_<sigma>.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    H = eq5_matrix(args.form, args.sigma, args.normalise)
    rng = np.random.default_rng(0)
    m = rng.uniform(0, 1, (10000, N))  # "normalized uniform random samples": U(0, 1)
    n = m @ H.T
    t = lambda a: torch.tensor(a, dtype=torch.float32)[:, None]  # noqa: E731
    data = (t(m[:9000]), t(n[:9000]), t(m[9000:]), t(n[9000:]))
    print(f"H: form={args.form} sigma={args.sigma} normalise={args.normalise}; n range [{n.min():.2f}, {n.max():.2f}], "
          f"var {n.var():.3f}; 9000 train / 1000 test; {args.steps} steps x batch {args.batch}; {args.seeds} seeds")
    references = linear_references(m[:9000], n[:9000], m[9000:], n[9000:])
    for name, value in references.items():
        print(f"  reference: {name}: PSNR {value:.2f} dB")
    rows = []
    for name in args.models:
        runs = [run_one(name, data, args.steps, args.batch, seed) for seed in range(args.seeds)]
        ps = np.array([r["psnr"] for r in runs])
        row = {
            "model": name,
            "psnr_mean": float(ps.mean()),
            "psnr_std": float(ps.std()),
            "psnr_best": float(ps.max()),
            "psnr_half_steps": float(np.mean([r["psnr_at"][args.steps // 2] for r in runs])),
            "params": runs[0]["params"],
            "infer_us_per_sample": float(np.median([r["infer_us_per_sample"] for r in runs])),
            "train_s": float(np.mean([r["train_s"] for r in runs])),
            "runs": runs,
        }
        rows.append(row)
        print(f"  {name:16s} PSNR {row['psnr_mean']:6.2f} ± {row['psnr_std']:.2f} dB (best {row['psnr_best']:.2f}, "
              f"at half the steps {row['psnr_half_steps']:.2f})  params {row['params']:5d}  "
              f"{row['infer_us_per_sample']:.2f} µs/sample  train {row['train_s']:.0f} s", flush=True)
    print("\n| model | PSNR (dB), mean ± sd | best | params | inference (µs / sample) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | {r['psnr_best']:.2f} | {r['params']} | {r['infer_us_per_sample']:.2f} |")
    out = Path(args.out or results_dir("paper_1d") / f"paper_1d_{args.form}_{args.sigma}{'_norm' if args.normalise else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.platform(), "cpu": platform.processor(), "torch": torch.__version__, "threads": args.threads}
    out.write_text(json.dumps({"args": vars(args), "meta": meta, "references": references, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
