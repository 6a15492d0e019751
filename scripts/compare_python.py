#!/usr/bin/env python3
"""Time tnet against TensorLy on identical tensors, at identical ranks.

Usage (from the repository root; installs tnet's Python package and TensorLy):

    python3 -m venv target/pyenv && target/pyenv/bin/pip install ./python tensorly
    target/pyenv/bin/python scripts/compare_python.py [--threads 2] [--rounds 3] [--repeat 3]
        [--quick] [--cases tt8,tt16,tucker16,smooth8] [--dtypes f64,f32] [--json-out FILE]

What it does:

1. Generates the test tensors with a fixed seed (numpy's PCG64) and saves them as .npy
   files into a temporary directory:
   - ``tt8``: 8^8 (16.7M entries), the tensor of ``benches/tt_tr.rs``: a sum of three
     random tensor trains of ranks 3, 3, 2 with weights 1, 0.3, 0.1, plus 1e-3 relative
     Gaussian noise; decomposed by TT-SVD and TR-SVD at relative tolerance 1e-2.
   - ``tucker16``: 16^6 (16.7M entries), a random Tucker tensor of multilinear rank 8
     (Gaussian core, orthonormal factors) plus 1e-3 relative noise; HOSVD at rank 8.
   - ``tt16``: 16^6, a random tensor train of ranks 8 (Gaussian cores) plus 1e-3
     relative noise; TT-SVD at rank 8, TR-SVD at relative tolerance 1e-2 (a ring
     needs larger ranks than the train it approximates, so a rank cap of 8 would not fit).
   - ``smooth8``: 8^8, ``1 / (1 + x_1 + .. + x_8)`` on the grid ``x_k = i_k / 7``, the
     tensor of ``benches/tucker_bt.rs``; HOSVD at relative tolerance 1e-2.
2. For every (tensor, dtype, method), alternately calls tnet (its Python package, in
   this process, on the same NumPy array: ``tnet.tt_svd(x, ...)``, read in place, and
   the cores fetched as NumPy arrays, all inside the timed region) and TensorLy (best of
   ``--repeat`` calls each), ``--rounds`` times; the reported time of
   each side is its best over all rounds. ``--first`` also reports each side's first
   call in the process (before any warm-up), the time a user of a one-off call sees. Both sides are pinned to ``--threads`` threads
   (OMP/OPENBLAS/MKL_NUM_THREADS for numpy's BLAS/LAPACK, RAYON_NUM_THREADS for tnet).
3. Same ranks on both sides: tnet runs first with the rule (a rank cap or a relative
   tolerance); TensorLy, which only takes ranks, gets exactly the ranks tnet chose.
   Relative error ``||X - Y||_F / ||X||_F`` and parameter counts are computed outside
   the timed region.

TensorLy calls (numpy backend, default ``svd="truncated_svd"``, i.e. a full thin LAPACK
SVD of every unfolding, truncated afterwards):

- TT-SVD: ``tensorly.decomposition.tensor_train(X, rank=[1, r_1, .., r_{d-1}, 1])``
- TR-SVD: ``tensorly.decomposition.tensor_ring(X, rank=[r_0, r_1, .., r_{d-1}, r_0])``
- HOSVD:  ``tensorly.decomposition.tucker(X, rank=[R_1, .., R_d], init="svd",
  n_iter_max=0)``: the factors from the SVDs of the d unfoldings of the full tensor,
  then the core, and no HOOI sweep (the truncated HOSVD of De Lathauwer et al. 2000).

tnet calls: ``tnet.tt_svd``, ``tnet.tr_svd``, ``tnet.hosvd(x, sequential=False)`` (the
same algorithm as TensorLy's) and, as an extra row, ``tnet.hosvd(x)`` (tnet's default
Tucker, sequentially truncated), compared with the same TensorLy HOSVD at tnet's ranks.
tnet's own error measurement is switched off in the timed call (``measure_error=False``);
both errors are computed afterwards, outside the timed region, the same way.

There is no hierarchical-Tucker (HT) comparison: TensorLy has no HT format and the
``htucker`` package is not on PyPI.
"""

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--repeat", type=int, default=3, help="calls per side per round (default 3)")
    p.add_argument("--quick", action="store_true", help="small tensors (a smoke test)")
    p.add_argument("--cases", default="tt8,tt16,tucker16,smooth8", help="tensors to run")
    p.add_argument("--dtypes", default="f64,f32", help="precisions (smooth8 is f64 only)")
    p.add_argument("--first", action="store_true", help="also time each side's first call")
    p.add_argument("--json-out", type=Path, help="also write every measurement here")
    return p.parse_args()


ARGS = parse_args()
# Pin the thread count before numpy loads its BLAS.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import tensorly as tl  # noqa: E402
import tnet  # noqa: E402
from tensorly.decomposition import tensor_ring, tensor_train, tucker  # noqa: E402

tl.set_backend("numpy")


# ---------------------------------------------------------------------------------------
# test tensors
# ---------------------------------------------------------------------------------------


def tt_dense(cores):
    """Dense tensor of a tensor train with cores of shape (r_{k-1}, n_k, r_k)."""
    out = cores[0].reshape(cores[0].shape[1], -1)  # (n_1, r_1)
    for g in cores[1:]:
        r, n, q = g.shape
        out = (out @ g.reshape(r, n * q)).reshape(-1, q)
    return out.reshape([g.shape[1] for g in cores])


def random_tt(rng, shape, rank):
    ranks = [1] + [rank] * (len(shape) - 1) + [1]
    return [rng.standard_normal((ranks[k], n, ranks[k + 1])) for k, n in enumerate(shape)]


def add_noise(rng, x, rel):
    noise = rng.standard_normal(x.shape)
    x += rel * np.linalg.norm(x) / np.linalg.norm(noise) * noise
    return x


def tensor_tt8(rng, n, d):
    """benches/tt_tr.rs: decaying sum of TT tensors of ranks 3, 3, 2 plus 1e-3 noise."""
    shape = [n] * d
    x = np.zeros(shape)
    for rank, weight in ((3, 1.0), (3, 0.3), (2, 0.1)):
        t = tt_dense(random_tt(rng, shape, rank))
        x += weight / np.linalg.norm(t) * t
    return add_noise(rng, x, 1e-3)


def tensor_tucker16(rng, n, d, rank=8):
    """Random Tucker tensor of multilinear rank 8 (orthonormal factors) plus 1e-3 noise."""
    x = rng.standard_normal([rank] * d)
    for k in range(d):
        q, _ = np.linalg.qr(rng.standard_normal((n, rank)))
        x = np.moveaxis(np.tensordot(q, x, axes=([1], [k])), 0, k)
    return add_noise(rng, np.ascontiguousarray(x), 1e-3)


def tensor_tt16(rng, n, d, rank=8):
    """Random tensor train of ranks 8 (Gaussian cores) plus 1e-3 relative noise."""
    return add_noise(rng, tt_dense(random_tt(rng, [n] * d, rank)), 1e-3)


def tensor_smooth8(_rng, n, d):
    """benches/tucker_bt.rs: 1 / (1 + x_1 + .. + x_d) on the grid x_k = i_k / (n - 1)."""
    grid = np.arange(n) / (n - 1)
    s = np.zeros([n] * d)
    for k in range(d):
        shape = [1] * d
        shape[k] = n
        s = s + grid.reshape(shape)
    return 1.0 / (1.0 + s)


# name -> (generator, (n, d) full, (n, d) quick, [(method, rank, rel_eps)], dtypes)
CASES = {
    "tt8": (
        tensor_tt8,
        (8, 8),
        (6, 6),
        [("tt", None, 1e-2), ("tr", None, 1e-2)],
        ("f64", "f32"),
    ),
    "tucker16": (
        tensor_tucker16,
        (16, 6),
        (10, 5),
        [("hosvd", 8, None), ("tucker", 8, None)],
        ("f64", "f32"),
    ),
    "tt16": (
        tensor_tt16,
        (16, 6),
        (10, 5),
        [("tt", 8, None), ("tr", None, 1e-2)],
        ("f64", "f32"),
    ),
    "smooth8": (
        tensor_smooth8,
        (8, 8),
        (6, 6),
        [("hosvd", None, 1e-2), ("tucker", None, 1e-2)],
        ("f64",),
    ),
}

LABEL = {
    "tt": "TT-SVD",
    "tr": "TR-SVD",
    "hosvd": "HOSVD",
    "tucker": "ST-HOSVD (tnet) vs HOSVD (TensorLy)",
}


# ---------------------------------------------------------------------------------------
# the two sides
# ---------------------------------------------------------------------------------------


def tensorly_call(method, x, ranks):
    """The TensorLy call for `method` at tnet's ranks; returns (decomposition, dense fn)."""
    if method == "tt":
        y = tensor_train(x, rank=list(ranks))
        return y, lambda: tl.tt_to_tensor(y), sum(f.size for f in y.factors)
    if method == "tr":
        y = tensor_ring(x, rank=list(ranks) + [ranks[0]])
        return y, lambda: tl.tr_to_tensor(y), sum(f.size for f in y.factors)
    if method in ("hosvd", "tucker"):
        y = tucker(x, rank=list(ranks), init="svd", n_iter_max=0)
        core, factors = y
        return y, lambda: tl.tucker_to_tensor(y), core.size + sum(f.size for f in factors)
    raise ValueError(method)


def time_tensorly(method, x, ranks, repeat):
    best = float("inf")
    out = None
    for _ in range(repeat):
        out = None
        gc.collect()
        start = time.perf_counter()
        out = tensorly_call(method, x, ranks)
        best = min(best, time.perf_counter() - start)
    _, dense, params = out
    y = dense()
    x64 = x.astype(np.float64, copy=False)
    err = np.linalg.norm(x64 - y.astype(np.float64, copy=False)) / np.linalg.norm(x64)
    return {"seconds": best, "rel_error": float(err), "params": int(params)}


def tnet_call(method, x, rank, rel_eps):
    """The tnet call for `method` (the error is measured afterwards, outside the timing)."""
    rule = {"rank": rank} if rank is not None else {"rel_eps": rel_eps}
    if method == "tt":
        return tnet.tt_svd(x, measure_error=False, **rule)
    if method == "tr":
        return tnet.tr_svd(x, measure_error=False, **rule)
    if method == "hosvd":
        return tnet.hosvd(x, sequential=False, measure_error=False, **rule)
    if method == "tucker":
        return tnet.hosvd(x, measure_error=False, **rule)
    raise ValueError(method)


def time_tnet(method, x, rank, rel_eps, repeat):
    best = float("inf")
    y = None
    for _ in range(repeat):
        y = None
        gc.collect()
        start = time.perf_counter()
        y = tnet_call(method, x, rank, rel_eps)
        cores = y.cores  # the NumPy arrays a user gets, as TensorLy returns them
        best = min(best, time.perf_counter() - start)
        del cores
    x64 = x.astype(np.float64, copy=False)
    err = np.linalg.norm(x64 - y.to_dense().astype(np.float64, copy=False)) / np.linalg.norm(x64)
    return {"seconds": best, "rel_error": float(err), "params": y.n_params, "ranks": y.ranks}


def first_calls(x):
    """Each side's first call in this process (no warm-up), on a tensor like `x`."""
    start = time.perf_counter()
    tnet.tt_svd(x, rank=4, measure_error=False)
    t = time.perf_counter() - start
    start = time.perf_counter()
    tensor_train(x, rank=[1] + [4] * (x.ndim - 1) + [1])
    return {"tnet": t, "tensorly": time.perf_counter() - start}


def versions():
    cfg = np.show_config(mode="dicts")
    blas = cfg.get("Build Dependencies", {}).get("blas", {})
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": f"{blas.get('name', '?')} {blas.get('version', '?')}",
        "tensorly": tl.__version__,
        "tnet": tnet.__version__,
        "threads": ARGS.threads,
        "cpu": platform.processor() or platform.machine(),
        "simd": simd(),
    }


def simd():
    """Which SIMD paths ran: scripts/force-avx2 caps faer, tnet and OpenBLAS at AVX2."""
    if os.environ.get("TNET_FORCED_AVX2"):
        return "AVX2 forced (scripts/force-avx2: faer GEMM, TNET_ISA, OPENBLAS_CORETYPE=Haswell)"
    return "SIMD as the CPU offers"


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------


def main():
    info = versions()
    print(
        f"# tnet vs TensorLy {info['tensorly']} (numpy {info['numpy']}, {info['blas']}), "
        f"{ARGS.threads} threads, best of {ARGS.rounds} interleaved rounds x {ARGS.repeat} calls, "
        f"{info['simd']}",
        file=sys.stderr,
    )
    rows = []
    rng_seed = 20261129
    first = None
    for case in ARGS.cases.split(","):
        gen, full, small, methods, dtypes = CASES[case]
        n, d = small if ARGS.quick else full
        x64 = gen(np.random.default_rng(rng_seed), n, d)
        for dtype in ARGS.dtypes.split(","):
            if dtype not in dtypes:
                continue
            x = x64 if dtype == "f64" else x64.astype(np.float32)
            x = np.ascontiguousarray(x)
            if ARGS.first and first is None:
                first = first_calls(x)
            for method, rank, rel_eps in methods:
                rust, py = None, None
                for _ in range(ARGS.rounds):
                    r = time_tnet(method, x, rank, rel_eps, ARGS.repeat)
                    if rust is None or r["seconds"] < rust["seconds"]:
                        rust = r
                    # TT: [1, r_1, .., 1]; TR: [r_0, .., r_{d-1}]; Tucker: [R_k].
                    p = time_tensorly(method, x, r["ranks"], ARGS.repeat)
                    if py is None or p["seconds"] < py["seconds"]:
                        py = p
                rule = f"rank {rank}" if rank is not None else f"rel {rel_eps:g}"
                row = {
                    "case": f"{case} {n}^{d} {dtype}",
                    "method": LABEL[method],
                    "rule": rule,
                    "ranks": rust["ranks"],
                    "tnet": rust,
                    "tensorly": py,
                }
                rows.append(row)
                print(
                    f"{row['case']} {method} {rule}: tnet {rust['seconds']:.3f}s "
                    f"TensorLy {py['seconds']:.3f}s",
                    file=sys.stderr,
                )
            del x
    print_table(rows, info)
    if first is not None:
        print(
            f"\nFirst call in the process (TT-SVD rank 4 of the first tensor): tnet "
            f"{first['tnet']:.3f} s, TensorLy {first['tensorly']:.3f} s"
        )
    if ARGS.json_out:
        out = {"versions": info, "rows": rows, "first_calls": first}
        ARGS.json_out.write_text(json.dumps(out, indent=1))


def print_table(rows, info):
    print(
        f"tnet vs TensorLy {info['tensorly']} (numpy {info['numpy']}, {info['blas']}, "
        f"Python {info['python']}), {info['threads']} threads, best of "
        f"{ARGS.rounds} interleaved rounds x {ARGS.repeat} calls, {info['simd']}.\n"
    )
    print(
        "| case | method | rule (ranks) | tnet s | TensorLy s | speed-up | tnet rel err "
        "| TensorLy rel err | tnet params | TensorLy params |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        t, p = r["tnet"], r["tensorly"]
        shown = ",".join(map(str, r["ranks"]))
        print(
            f"| {r['case']} | {r['method']} | {r['rule']} ({shown}) | {t['seconds']:.3f} "
            f"| {p['seconds']:.3f} | {p['seconds'] / t['seconds']:.1f}x "
            f"| {t['rel_error']:.2e} | {p['rel_error']:.2e} | {t['params']} | {p['params']} |"
        )


if __name__ == "__main__":
    main()
