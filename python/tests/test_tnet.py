"""Tests of the Python package: round trips, error bounds, exact recovery, bad input,
zero-copy input, threads, tensorized matrices with gradients, files, and agreement with
TensorLy at the same ranks."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tnet

RNG = np.random.default_rng(20261207)


def rel(x, y):
    return float(np.linalg.norm((x - y).ravel()) / np.linalg.norm(x.ravel()))


def tt_tensor(shape, rank, rng):
    """A dense tensor with TT ranks at most `rank`."""
    ranks = [1] + [rank] * (len(shape) - 1) + [1]
    out = np.ones((1, 1))
    for k, n in enumerate(shape):
        core = rng.standard_normal((ranks[k], n, ranks[k + 1]))
        out = np.tensordot(out, core, axes=([-1], [0]))
    return out.reshape(shape)


def tucker_tensor(shape, rank, rng):
    core = rng.standard_normal((rank,) * len(shape))
    for k, n in enumerate(shape):
        u = np.linalg.qr(rng.standard_normal((n, rank)))[0]
        core = np.moveaxis(np.tensordot(core, u, axes=([k], [1])), -1, k)
    return core


# ---------------------------------------------------------------------------------------
# decompositions
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", tnet.FORMATS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("eps", [0.5, 0.1])
def test_tolerance_is_met_and_measured(fmt, dtype, eps):
    x = RNG.standard_normal((6, 7, 5, 4)).astype(dtype)
    y = tnet.decompose(x, fmt, rel_eps=eps)
    measured = rel(x.astype(np.float64), y.to_dense().astype(np.float64))
    assert y.dtype == np.dtype(dtype).name
    assert all(c.dtype == dtype for c in y.cores)
    slack = 1e-5 if dtype == np.float32 else 1e-12
    if fmt != "bt":  # BT reports the error it reached, not an a-priori bound
        assert y.rel_error_bound <= eps + slack
        assert measured <= y.rel_error_bound + slack
    assert measured <= eps + slack
    assert y.rel_error == pytest.approx(measured, rel=1e-3, abs=slack)
    assert y.n_params == sum(c.size for c in y.cores)


@pytest.mark.parametrize("fmt,maker", [
    ("tt", lambda s, r: tt_tensor(s, r, RNG)),
    ("tucker", lambda s, r: tucker_tensor(s, r, RNG)),
    ("ht", lambda s, r: tucker_tensor(s, r, RNG)),  # multilinear rank r: HT ranks <= r at the leaves
])
def test_exact_recovery_of_low_rank_tensors(fmt, maker):
    x = maker((5, 6, 7, 4), 2)
    y = tnet.decompose(x, fmt, rel_eps=1e-10)
    assert rel(x, y.to_dense()) < 1e-10
    if fmt == "tt":
        assert max(y.ranks) <= 2
    if fmt == "tucker":
        assert y.ranks == [2, 2, 2, 2]


@pytest.mark.parametrize("fmt", ["tt", "ht", "tucker"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_randomized_meets_its_tolerance_and_its_bound(fmt, dtype):
    # Rank 4 plus noise, 60 x 50 x 40: the mode unfoldings are sketched.
    x = (tucker_tensor((60, 50, 40), 4, RNG) + 1e-4 * RNG.standard_normal((60, 50, 40))).astype(dtype)
    slack = 1e-4 if dtype == np.float32 else 1e-12
    y = tnet.decompose(x, fmt, rel_eps=1e-2, method="randomized", seed=3)
    measured = rel(x.astype(np.float64), y.to_dense().astype(np.float64))
    assert measured <= 1e-2 + slack
    assert measured <= y.rel_error_bound + slack
    z = tnet.decompose(x, fmt, rank=4, method="randomized", power_iterations=0, oversample=8)
    exact = tnet.decompose(x, fmt, rank=4)
    assert z.rel_error <= 1.5 * exact.rel_error + slack
    again = tnet.decompose(x, fmt, rank=4, method="randomized", power_iterations=0, oversample=8)
    assert all(np.array_equal(a, b) for a, b in zip(z.cores, again.cores))


def test_tr_recovers_a_train_exactly():
    x = tt_tensor((5, 6, 7, 4), 2, RNG)
    y = tnet.tr_svd(x, rel_eps=1e-10)
    assert rel(x, y.to_dense()) < 1e-10


def test_rank_cap_and_tree():
    x = RNG.standard_normal((4, 5, 6, 7))
    y = tnet.ht_svd(x, rank=3, tree="((0,2),(1,3))")
    assert y.tree == "((0,2),(1,3))"
    assert max(y.ranks) <= 3
    assert y.rel_error <= y.rel_error_bound + 1e-12


def test_round_arithmetic_inner_norm():
    x = tt_tensor((4, 5, 6), 3, RNG)
    y = tnet.tt_svd(x, rel_eps=1e-12)
    assert y.ranks == [1, 3, 3, 1]
    s = y + y
    assert s.ranks == [1, 6, 6, 1]
    np.testing.assert_allclose(s.to_dense(), 2 * x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose((y - y).to_dense(), 0 * x, atol=1e-10)
    np.testing.assert_allclose((3.0 * y).to_dense(), 3 * x, rtol=1e-10)
    np.testing.assert_allclose((-y).to_dense(), -x, rtol=1e-10)
    r = s.round(rel_eps=1e-10)
    assert max(r.ranks) <= 3
    assert rel(2 * x, r.to_dense()) <= 1e-9
    assert r.error_bound <= 1e-9 * np.linalg.norm(2 * x)
    assert y.inner(y) == pytest.approx(np.sum(x * x), rel=1e-10)
    assert y.norm() == pytest.approx(np.linalg.norm(x), rel=1e-10)
    assert y.distance(x) < 1e-9
    assert y.entry([1, 2, 3]) == pytest.approx(x[1, 2, 3], rel=1e-10)


def test_hooi_error_never_increases():
    x = RNG.standard_normal((6, 7, 8))
    y = tnet.hooi(x, rank=3)
    h = y.error_history
    assert all(b <= a + 1e-12 for a, b in zip(h, h[1:]))
    assert y.rel_error == pytest.approx(rel(x, y.to_dense()), rel=1e-8)
    assert y.rel_error <= tnet.hosvd(x, rank=3).rel_error + 1e-12


def test_bt_blocks():
    x = RNG.standard_normal((5, 6, 7))
    y = tnet.bt_als(x, blocks=3, rank=2)
    assert y.n_blocks == 3
    assert y.rel_error == pytest.approx(rel(x, y.to_dense()), rel=1e-8)


def test_tensorized_weight_round_trip():
    w = RNG.standard_normal((60, 40))
    y = tnet.decompose(w, "tt", rel_eps=1e-12, out_modes=[4, 4, 4], in_modes=[4, 4, 3])
    assert y.shape == [60, 40]
    assert y.tensor_shape == [16, 16, 12]
    assert y.matrix_modes == ([4, 4, 4], [4, 4, 3])
    np.testing.assert_allclose(y.to_dense(), w, atol=1e-10)


def test_non_contiguous_and_converted_inputs():
    x = RNG.standard_normal((5, 6, 7))
    a = tnet.tt_svd(np.asfortranarray(x), rank=3).to_dense()
    b = tnet.tt_svd(x.transpose(2, 1, 0).transpose(2, 1, 0), rank=3).to_dense()
    c = tnet.tt_svd(x, rank=3).to_dense()
    np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-12)
    big_endian = x.astype(">f8")
    np.testing.assert_allclose(tnet.tt_svd(big_endian, rank=3).to_dense(), c, atol=1e-12)
    ints = np.arange(24).reshape(2, 3, 4)
    assert tnet.tt_svd(ints, exact=True).dtype == "float64"
    assert tnet.tt_svd(ints.astype(np.float16), exact=True).dtype == "float32"
    assert tnet.tt_svd(ints.tolist(), exact=True).shape == [2, 3, 4]


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,message", [
    (lambda: tnet.decompose(np.ones((3, 3)), "tt"), "truncation rule"),
    (lambda: tnet.decompose(np.ones((3, 3)), "qq", rank=1), "unknown format"),
    (lambda: tnet.decompose(np.full((3, 3), np.nan), "tt", rank=1), "non-finite"),
    (lambda: tnet.decompose(np.ones((3, 0)), "tt", rank=1), "empty"),
    (lambda: tnet.decompose(np.float64(1.0), "tt", rank=1), "0-d"),
    (lambda: tnet.decompose(np.ones((3, 3)), "tt", rel_eps=-1.0), "rel_eps"),
    (lambda: tnet.decompose(np.ones((3, 3)), "tt", rank=0), "rank"),
    (lambda: tnet.decompose(np.ones((3, 3, 3)), "ht", rank=2, tree="((0,1),5)"), "tree"),
    (lambda: tnet.decompose(np.ones((3, 3)), "tt", rank=2, tree="(0,1)"), "only meaningful"),
    (lambda: tnet.decompose(np.ones((3, 3)), "tr", rank=2, method="randomized"), "randomized"),
    (lambda: tnet.decompose(np.ones((3, 3)), "tt", rank=2, method="fast"), "unknown method"),
    (lambda: tnet.decompose(np.ones((3, 3)), "tt", rank=2, oversample=4), "only meaningful"),
    (lambda: tnet.decompose(np.ones((4, 4)), "tt", rank=2, out_modes=[2, 2], in_modes=[3]), "modes"),
    (lambda: tnet.decompose(np.array(["a"]), "tt", rank=1), "numeric"),
    (lambda: tnet.decompose(np.full((4, 4), 1e-44, np.float32), "tt", rel_eps=1e-2), "subnormal"),
    (lambda: tnet.hosvd(np.full((4, 4), 1e-320), rel_eps=1e-2), "subnormal"),
    (lambda: tnet.from_cores("tt", [np.ones((1, 2, 3)), np.ones((2, 2, 1))]), "rank"),
    (lambda: tnet.from_cores("tucker", [np.ones((2, 2)), np.ones((3, 2))]), "factor"),
    (lambda: tnet.Matrix.from_dense(np.ones((6, 4)), "tt", out_modes=[2, 2], in_modes=[2, 2], rank=2), "shape"),
    (lambda: tnet.Matrix.from_dense(np.ones((4, 4)), "tucker", out_modes=[2, 2], in_modes=[2, 2], rank=2), "no matrix form"),
])
def test_bad_input_raises_value_error_with_the_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_exception_types():
    assert issubclass(tnet.TnetError, ValueError)
    with pytest.raises(OSError):
        tnet.load("/nonexistent/dir/x.safetensors")
    x = tnet.tt_svd(np.ones((3, 4)), rank=1)
    y = tnet.hosvd(np.ones((3, 4)), rank=1)
    with pytest.raises(ValueError, match="same format"):
        x + y
    with pytest.raises(ValueError, match="dtype"):
        x + tnet.tt_svd(np.ones((3, 4), np.float32), rank=1)


def test_corrupt_and_truncated_files(tmp_path):
    p = tmp_path / "x.safetensors"
    tnet.tt_svd(RNG.standard_normal((4, 5, 6)), rank=2).save(p)
    data = p.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        tnet.load(tmp_path / "trunc.safetensors")
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF
    (tmp_path / "flip.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="checksum"):
        tnet.load(tmp_path / "flip.safetensors")


# ---------------------------------------------------------------------------------------
# memory and threads
# ---------------------------------------------------------------------------------------


def test_input_is_read_in_place_not_copied():
    """A 256 MB float64 tensor decomposed at rank 1 raises the process's peak memory by
    far less than its size (a copy would add 256 MB)."""
    code = r"""
import resource, sys, numpy as np, tnet
x = np.random.default_rng(0).standard_normal((32, 32, 32, 32, 32))  # 256 MiB
if sys.argv[1] == "F":
    x = np.asfortranarray(x)
x += 0.0
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = tnet.tt_svd(x, rank=1, measure_error=False)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024 / x.nbytes)
"""
    for order in ["C", "F"]:
        out = subprocess.run([sys.executable, "-c", code, order], capture_output=True, text=True, check=True)
        growth = float(out.stdout.strip())
        assert growth < 0.5, f"{order} order: peak memory grew by {growth:.2f}x the input"


def test_the_gil_is_released_during_a_decomposition():
    """Another Python thread runs while tnet decomposes. With a switch interval of 100 s the
    main thread never hands the GIL over by itself, so the other thread can only run while
    the call has released it (it sleeps for 0 s each turn, which lets the main thread take
    the GIL back when the call returns)."""
    x = RNG.standard_normal((32, 32, 32, 16, 16))
    done = threading.Event()
    count = [0]

    def counter():
        while not done.is_set():
            count[0] += 1
            time.sleep(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        t = threading.Thread(target=counter)
        t.start()
        before = count[0]
        tnet.tt_svd(x, rank=2)
        during = count[0] - before
        done.set()
        t.join()
    finally:
        sys.setswitchinterval(interval)
    assert during > 10, f"the other thread ran {during} times during the call"


def test_two_threads_decompose_at_once():
    xs = [RNG.standard_normal((16, 16, 16, 16)) for _ in range(2)]
    expected = [tnet.ht_svd(x, rel_eps=0.3).to_dense() for x in xs]
    results = [None, None]
    errors = []

    def run(i):
        try:
            for _ in range(3):
                results[i] = tnet.ht_svd(xs[i], rel_eps=0.3).to_dense()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r, e in zip(results, expected):
        np.testing.assert_array_equal(r, e)


# ---------------------------------------------------------------------------------------
# tensorized matrices
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,kw", [
    ("ht", {}), ("tt", {}), ("tr", {}), ("tr", {"layout": "split"}), ("bt", {"blocks": 2}),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matrix_apply_and_gradients(fmt, kw, dtype):
    w = tnet.Matrix.random(fmt, 24, 30, 3, out_modes=[2, 3, 4], in_modes=[3, 2, 5], dtype=dtype, seed=1, **kw)
    assert w.shape == (24, 30)
    dense = w.to_dense()
    x = RNG.standard_normal((7, 30)).astype(dtype)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(w.apply(x), x @ dense.T, rtol=tol, atol=tol)
    np.testing.assert_allclose(w.apply(x[0]), dense @ x[0], rtol=tol, atol=tol)
    dy = RNG.standard_normal((7, 24)).astype(dtype)
    np.testing.assert_allclose(w.apply_transpose(dy), dy @ dense, rtol=tol, atol=tol)
    dx, grads = w.backward(x, dy)
    np.testing.assert_allclose(dx, dy @ dense, rtol=tol, atol=tol)
    assert [g.shape for g in grads] == [p.shape for p in w.params]
    if dtype == "float64":
        # Finite differences of L = sum(dY * (X W^T)) in a few entries of every core.
        params = w.params
        for k, p in enumerate(params):
            for flat in RNG.choice(p.size, size=min(3, p.size), replace=False):
                h = 1e-6
                shifted = [q.copy() for q in params]
                shifted[k].flat[flat] += h
                w.set_params(shifted)
                up = np.sum(dy * w.apply(x))
                shifted[k].flat[flat] -= 2 * h
                w.set_params(shifted)
                down = np.sum(dy * w.apply(x))
                w.set_params(params)
                assert grads[k].flat[flat] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-7)


def test_matrix_from_dense_meets_the_tolerance():
    wd = RNG.standard_normal((64, 48))
    for fmt in ["ht", "tt", "tr"]:
        m = tnet.Matrix.from_dense(wd, fmt, out_modes=[4, 4, 4], in_modes=[4, 4, 3], rel_eps=0.4)
        assert m.rel_error_bound <= 0.4 + 1e-12
        assert rel(wd, m.to_dense()) <= m.rel_error_bound + 1e-12


def test_set_params_is_checked():
    w = tnet.Matrix.random("tt", 16, 16, 2, order=2, dtype="float64")
    p = w.params
    with pytest.raises(ValueError, match="parameter arrays"):
        w.set_params(p[:1])
    with pytest.raises(ValueError, match="shape"):
        w.set_params([np.ones((1, 1, 1, 1))] + p[1:])
    bad = [q.copy() for q in p]
    bad[0].flat[0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        w.set_params(bad)
    with pytest.raises(ValueError, match="dtype"):
        w.apply(np.ones((2, 16), np.float32))


# ---------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------


def test_save_load_and_names(tmp_path):
    x = RNG.standard_normal((5, 6, 7))
    y = tnet.ht_svd(x, rank=3)
    p = tmp_path / "y.safetensors"
    y.save(p, name="activations")
    z = tnet.load(p)
    assert z.format == "ht" and z.ranks == y.ranks and z.tree == y.tree
    np.testing.assert_array_equal(z.to_dense(), y.to_dense())
    assert tnet.load(p, name="activations").ranks == y.ranks
    with pytest.raises(ValueError, match="no compressed tensor named"):
        tnet.load(p, name="other")


def test_compress_and_reconstruct_a_model(tmp_path):
    # A weight of TT-matrix rank 2 on the modes compress_file chooses (order 2).
    layer = tnet.Matrix.random("tt", 128, 96, 2, order=2, dtype="float64", seed=3).to_dense()
    weights = {"layer.weight": layer, "bias": RNG.standard_normal(128)}
    src = tmp_path / "model.npz"
    np.savez(src, **weights)
    out = tmp_path / "model.tnet.safetensors"
    report = tnet.compress_file(src, out, "tt", rel_eps=1e-8, min_size=1000, order=2)
    names = {t["name"]: t for t in report["tensors"]}
    assert names["layer.weight"]["format"] == "tt"
    assert names["layer.weight"]["rel_error"] < 1e-8
    assert names["bias"]["kept_dense"]
    loaded = tnet.load_all(out)
    np.testing.assert_allclose(loaded["layer.weight"].to_dense(), weights["layer.weight"], atol=1e-9)
    dense = tmp_path / "dense.safetensors"
    tnet.reconstruct_file(out, dense)
    assert dense.stat().st_size > 0
    with pytest.raises(ValueError, match="already compressed"):
        tnet.compress_file(out, tmp_path / "again.safetensors", "tt", rel_eps=0.1)
    with pytest.raises(ValueError, match="replace the input"):
        tnet.compress_file(src, src, "tt", rel_eps=0.1)
    assert src.exists()


# ---------------------------------------------------------------------------------------
# TensorLy
# ---------------------------------------------------------------------------------------

tl = pytest.importorskip("tensorly")


def test_same_tt_as_tensorly_at_the_same_ranks():
    from tensorly.decomposition import tensor_train

    x = tt_tensor((6, 7, 8, 5), 4, RNG) + 1e-3 * RNG.standard_normal((6, 7, 8, 5))
    y = tnet.tt_svd(x, rank=3)
    t = tensor_train(x, rank=y.ranks)
    np.testing.assert_allclose(y.to_dense(), tl.tt_to_tensor(t), rtol=1e-9, atol=1e-9 * np.abs(x).max())


def test_same_tr_as_tensorly_at_the_same_ranks():
    from tensorly.decomposition import tensor_ring

    x = tt_tensor((6, 7, 8, 5), 3, RNG) + 1e-3 * RNG.standard_normal((6, 7, 8, 5))
    y = tnet.tr_svd(x, rel_eps=0.05)
    t = tensor_ring(x, rank=y.ranks + [y.ranks[0]])
    assert rel(tl.tr_to_tensor(t), y.to_dense()) < 1e-9


def test_hooi_reaches_tensorlys_tucker_error():
    from tensorly.decomposition import tucker

    x = tucker_tensor((8, 9, 10), 3, RNG) + 0.05 * RNG.standard_normal((8, 9, 10))
    y = tnet.hooi(x, rank=3, tol=1e-12, max_iter=200)
    t = tucker(x, rank=[3, 3, 3], init="svd", n_iter_max=200, tol=1e-12)
    assert y.rel_error == pytest.approx(rel(x, tl.tucker_to_tensor(t)), rel=1e-6)


def test_tensorly_conversions_round_trip():
    x = RNG.standard_normal((4, 5, 6))
    for y in [tnet.tt_svd(x, rank=2), tnet.tr_svd(x, rank=2), tnet.hosvd(x, rank=2)]:
        t = tnet.to_tensorly(y)
        np.testing.assert_allclose(tl.to_numpy(t.to_tensor()), y.to_dense(), atol=1e-12)
        back = tnet.from_tensorly(t)
        assert back.format == y.format
        np.testing.assert_allclose(back.to_dense(), y.to_dense(), atol=1e-12)
    with pytest.raises(ValueError, match="TensorLy has no ht"):
        tnet.to_tensorly(tnet.ht_svd(x, rank=2))
