"""A tour of tnet from Python: decompose a tensor, compress a weight matrix, and plot the
error against the parameter count (a PNG when matplotlib is installed, a table always).

    python python/examples/tour.py [--out tour.png]
"""

import argparse

import numpy as np

import tnet

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--out", default="tnet_tour.png", help="where the plot goes (needs matplotlib)")
args = p.parse_args()
rng = np.random.default_rng(0)

# 1. A smooth 4-D tensor: every format to 1e-6, with the bound it guarantees.
grid = np.linspace(0, 1, 12)
x = 1.0 / (1.0 + grid[:, None, None, None] + grid[None, :, None, None]
           + grid[None, None, :, None] + grid[None, None, None, :])
print(f"tensor {x.shape}, {x.size} entries")
for fmt in ["ht", "tt", "tr", "tucker"]:
    y = tnet.decompose(x, fmt, rel_eps=1e-6)
    print(f"  {fmt:6s} ranks {y.ranks}  params {y.n_params:5d}  "
          f"error {y.rel_error:.2e} <= bound {y.rel_error_bound:.2e}")

# 2. A smooth kernel matrix W[i, j] = exp(-|s_i - t_j|) plus 1 % noise, held as a TT, HT
#    and TR matrix at growing ranks.
s_, t_ = np.linspace(0, 4, 256), np.linspace(0, 4, 256)
w = np.exp(-np.abs(s_[:, None] - t_[None, :]))
w += 0.01 * np.linalg.norm(w) / 256 * rng.standard_normal(w.shape)
curves = {}
for fmt in ["tt", "ht", "tr"]:
    points = []
    for rank in [1, 2, 4, 8, 16, 32]:
        m = tnet.Matrix.from_dense(w, fmt, out_modes=[4, 8, 8], in_modes=[8, 8, 4], rank=rank)
        err = np.linalg.norm(w - m.to_dense()) / np.linalg.norm(w)
        points.append((m.n_params, err))
    curves[fmt] = points
    print(f"  {fmt} matrix: " + ", ".join(f"{n} params -> {e:.3f}" for n, e in points))

# 3. Apply it to a batch without forming W.
m = tnet.Matrix.from_dense(w, "tt", out_modes=[4, 8, 8], in_modes=[8, 8, 4], rel_eps=0.1)
batch = rng.standard_normal((32, 256))
y = m.apply(batch)
print(f"  TT matrix at rel_eps 0.1: {m.n_params} params ({m.compression_ratio:.1f}x), "
      f"batch error {np.linalg.norm(y - batch @ w.T) / np.linalg.norm(batch @ w.T):.3f}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed: no plot")
else:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for fmt, points in curves.items():
        n, e = zip(*points)
        ax.loglog(n, e, marker="o", label=f"{fmt.upper()} matrix")
    ax.set_xlabel("parameters")
    ax.set_ylabel("relative error")
    ax.set_title("256 x 256 kernel matrix + 1 % noise")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"plot written to {args.out}")
