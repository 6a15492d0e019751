"""tnet: tensor-network decompositions and tensorized layers, from NumPy.

Hierarchical Tucker (on any dimension tree), Tensor-Train, Tensor-Ring, Tucker and
block-term decompositions under one truncation rule with a guaranteed error bound, and
weight matrices held in those formats and applied without being formed. The engine is the
Rust crate ``tnet``; this package calls it in-process.

>>> import numpy as np, tnet
>>> x = np.random.default_rng(0).standard_normal((8, 8, 8, 8))
>>> y = tnet.decompose(x, "ht", rel_eps=0.5, tree="((0,1),(2,3))")
>>> y.rel_error <= y.rel_error_bound <= 0.5
True

The truncation rule is the same everywhere: ``rank=R`` caps every rank, ``rel_eps=E``
asks for ``||X - Y||_F <= E ||X||_F`` (guaranteed a priori for HT, TT, TR and Tucker; the
achieved error for BT), ``abs_eps=E`` for ``||X - Y||_F <= E``; combined, the tighter
wins; ``exact=True`` keeps everything.

Arrays: float32 and float64 NumPy arrays are read in place (no copy, any strides) and the
decomposition runs in their precision; float16 input is converted to float32 and any other
input to float64 first. Do not write to an array from another thread while tnet reads it
(the GIL is released during the call, as for NumPy's own long operations).
Everything returned is a new NumPy array. Decompositions and products release the GIL.
Bad input raises :class:`TnetError` (a ``ValueError``) with tnet's message; unreadable
files raise ``OSError``; an allocation above tnet's memory limit raises ``MemoryError``.
"""

from __future__ import annotations

import json
from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _tnet
from ._tnet import Decomposition, Matrix, TnetError

__all__ = [
    "FORMATS",
    "Decomposition",
    "Matrix",
    "TnetError",
    "bt_als",
    "compress_file",
    "decompose",
    "from_cores",
    "from_tensorly",
    "hooi",
    "hosvd",
    "ht_svd",
    "load",
    "load_all",
    "reconstruct_file",
    "to_tensorly",
    "tr_svd",
    "tt_svd",
]

try:
    from importlib.metadata import version as _version

    __version__ = _version("tnet")
except Exception:  # pragma: no cover - not installed as a distribution
    __version__ = "0.1.0"

#: The format names tnet knows: ``("ht", "tt", "tr", "tucker", "bt")``.
FORMATS: Tuple[str, ...] = tuple(_tnet.FORMATS)

_Path = Union[str, "PathLike[str]"]


def _as_float_array(x: Any, name: str = "x") -> np.ndarray:
    """``x`` itself when it is a native float32/float64 array, else a float64 copy."""
    if isinstance(x, np.ndarray) and x.dtype.isnative and x.dtype in (np.float32, np.float64):
        return x
    if isinstance(x, np.ndarray) and x.dtype == np.float16:
        return x.astype(np.float32)
    try:
        a = np.asarray(x)
        if a.dtype.kind not in "fiub":
            raise TnetError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
        return a.astype(np.float64 if a.dtype != np.float32 else np.float32)
    except (TypeError, ValueError) as e:
        if isinstance(e, TnetError):
            raise
        raise TnetError(f"{name}: cannot be read as a numeric array ({e})") from None


def decompose(
    x: Any,
    format: str,
    *,
    rank: Optional[int] = None,
    rel_eps: Optional[float] = None,
    abs_eps: Optional[float] = None,
    exact: bool = False,
    tree: Optional[str] = None,
    blocks: Optional[int] = None,
    out_modes: Optional[Sequence[int]] = None,
    in_modes: Optional[Sequence[int]] = None,
    measure_error: bool = True,
    seed: int = 0,
    method: str = "svd",
    oversample: Optional[int] = None,
    power_iterations: Optional[int] = None,
) -> Decomposition:
    """Decomposes a dense tensor into one of tnet's formats.

    Parameters
    ----------
    x : array_like
        The tensor (any order >= 1). float32/float64 arrays are read in place.
    format : {"ht", "tt", "tr", "tucker", "bt"}
        Hierarchical Tucker (HT-SVD), Tensor-Train (TT-SVD), Tensor-Ring (TR-SVD),
        Tucker (ST-HOSVD) or block-term (BT-ALS with a block-rank search).
    rank, rel_eps, abs_eps, exact
        The truncation rule (see the module docstring); at least one is required.
    tree : str, optional
        HT only: the dimension tree, e.g. ``"((0,1),(2,3))"``; balanced by default.
    blocks : int, optional
        BT only: the number of blocks (default 2).
    out_modes, in_modes : sequence of int, optional
        For a 2-D weight ``W`` (``M x N``): tensorize it first, pairing row mode ``m_k``
        with column mode ``n_k`` (``prod m_k >= M``, ``prod n_k >= N``, zero padding
        otherwise); the decomposition then holds the paired tensor of shape
        ``(m_1 n_1, .., m_d n_d)`` and ``to_dense()`` gives ``W`` back.
    measure_error : bool
        Measure the true ``||X - Y||_F / ||X||_F`` after decomposing (one more pass over
        ``x``, slab by slab); reported as ``rel_error``. A measured error above the
        guaranteed bound (possible only for entries near the limits of the dtype) raises
        ``TnetError``; with ``False`` nothing is measured and nothing is checked.
    seed : int
        BT: the seed that completes rank-deficient starts; randomized: the seed of the
        random sketches.
    method : {"svd", "randomized"}
        ``"svd"``: truncated SVDs of the unfoldings. ``"randomized"`` (ht, tt, tucker):
        randomized range finders (random sign sketches, Halko-Martinsson-Tropp), faster
        on unfoldings with many more rows than the rank; the reported ``error_bound`` is
        computed from the sketches a posteriori and is as rigorous as the SVD's.
    oversample, power_iterations : int, optional
        Randomized only: columns drawn beyond the rank (default 10) and power iterations
        (default 1; 0 reads the data once less at a larger error).

    Returns
    -------
    Decomposition
        With ``cores``, ``ranks``, ``error_bound`` (absolute), ``rel_error_bound``,
        ``rel_error`` (measured), ``to_dense()``, ``round()``, arithmetic and ``save()``.

    Error bound: HT, TT, TR and Tucker guarantee ``||X - Y||_F <= error_bound`` a priori
    (``method="randomized"``: a posteriori, from the sketches' computed residuals), with
    ``error_bound <= rel_eps ||X||_F`` when ``rel_eps`` is given. BT reports the error
    BT-ALS reached.

    Examples
    --------
    >>> import numpy as np, tnet
    >>> x = np.random.default_rng(1).standard_normal((6, 7, 8))
    >>> y = tnet.decompose(x, "tt", rel_eps=0.3)
    >>> bool(y.rel_error <= 0.3)
    True
    >>> z = tnet.decompose(x, "tucker", rank=3, method="randomized", seed=1)
    >>> bool(z.rel_error <= z.rel_error_bound + 1e-12)
    True
    """
    return _tnet.decompose(
        _as_float_array(x),
        format,
        rank=rank,
        rel_eps=rel_eps,
        abs_eps=abs_eps,
        exact=exact,
        tree=tree,
        blocks=blocks,
        out_modes=None if out_modes is None else list(out_modes),
        in_modes=None if in_modes is None else list(in_modes),
        measure_error=measure_error,
        seed=seed,
        method=method,
        oversample=oversample,
        power_iterations=power_iterations,
    )


def ht_svd(x: Any, *, tree: Optional[str] = None, **rule: Any) -> Decomposition:
    """Hierarchical Tucker by HT-SVD (Grasedyck 2010), leaves to root, on ``tree``
    (balanced by default): ``||X - Y||_F <= sqrt(2d - 3) * max local error``, split so
    that the total meets ``rel_eps``/``abs_eps``. ``rule``: ``rank``, ``rel_eps``,
    ``abs_eps``, ``exact``, ``measure_error``."""
    return decompose(x, "ht", tree=tree, **rule)


def tt_svd(x: Any, **rule: Any) -> Decomposition:
    """Tensor-Train by TT-SVD (Oseledets 2011): cores ``(r_{k-1}, n_k, r_k)``,
    ``||X - Y||_F <= sqrt(d - 1) * max local error``, split to meet the rule."""
    return decompose(x, "tt", **rule)


def tr_svd(x: Any, **rule: Any) -> Decomposition:
    """Tensor-Ring by TR-SVD (Zhao et al. 2016): cores ``(r_k, n_k, r_{k+1})`` with the
    ring closing ``r_d = r_0``; the first SVD's rank is split as ``r_0 r_1``."""
    return decompose(x, "tr", **rule)


def hosvd(
    x: Any,
    *,
    rank: Union[None, int, Sequence[int]] = None,
    sequential: bool = True,
    measure_error: bool = True,
    **rule: Any,
) -> Decomposition:
    """Tucker by the HOSVD: ``cores[0]`` is the core, ``cores[1:]`` the factors
    ``(n_k, R_k)`` with orthonormal columns, and
    ``||X - Y||_F^2 <= sum of the discarded squared singular values`` (``error_bound``).

    ``sequential=True`` (default) is the sequentially truncated HOSVD (Vannieuwenhoven et
    al. 2012: each unfolding from the already projected tensor, cheaper and never worse);
    ``False`` the classic truncated HOSVD (De Lathauwer et al. 2000), TensorLy's
    ``tucker(x, rank, init="svd", n_iter_max=0)``. ``rank`` is a cap on every mode or a
    list of per-mode ranks; ``rel_eps``/``abs_eps``/``exact`` as everywhere."""
    if rank is not None and not isinstance(rank, (int, np.integer)):
        return _tnet.hosvd(_as_float_array(x), mode_ranks=[int(r) for r in rank], sequential=sequential, measure_error=measure_error, **rule)
    return _tnet.hosvd(_as_float_array(x), rank=rank, sequential=sequential, measure_error=measure_error, **rule)


def hooi(x: Any, *, max_iter: int = 50, tol: float = 1e-8, **rule: Any) -> Decomposition:
    """Tucker by HOOI (higher-order orthogonal iteration): the ST-HOSVD under the rule
    fixes the ranks, then sweeps, each of which does not increase the error, until one
    lowers it by less than ``tol`` (relative) or ``max_iter`` sweeps ran. ``rel_error``
    is the final error and ``error_history`` the error after each sweep."""
    return _tnet.hooi(_as_float_array(x), max_iter=max_iter, tol=tol, **rule)


def bt_als(x: Any, *, blocks: int = 2, seed: int = 0, **rule: Any) -> Decomposition:
    """Block-term (rank-(L, M, N) terms) by BT-ALS, started from HOSVD blocks; with a
    tolerance, the smallest block rank that meets it is searched. The reported
    ``error_bound`` is the error reached."""
    return decompose(x, "bt", blocks=blocks, seed=seed, **rule)


def from_cores(format: str, cores: Sequence[Any], *, blocks: Optional[int] = None) -> Decomposition:
    """A decomposition from its cores, checked by the format's constructor.

    ``"tt"``/``"tr"``: 3-D cores ``(r, n_k, r')``; ``"tucker"``: ``[core, factor_1, ..]``
    with factors ``(n_k, R_k)``; ``"bt"``: the blocks' ``[core, factors..]`` one after the
    other, with ``blocks`` given. All cores float32, or all float64.
    """
    arrays = [np.ascontiguousarray(_as_float_array(c, f"core {k}")) for k, c in enumerate(cores)]
    if arrays and any(a.dtype != arrays[0].dtype for a in arrays):
        arrays = [a.astype(np.float64) for a in arrays]
    return _tnet.from_cores(format, arrays, blocks=blocks)


def load(path: _Path, name: Optional[str] = None) -> Decomposition:
    """Reads one decomposition from a tnet container (``Decomposition.save``, ``tnet
    decompose``, ``tnet compress``): the one it holds, or the one called ``name``."""
    items = _tnet.load_all(path)
    if name is not None:
        for n, d in items:
            if n == name:
                return d
        raise TnetError(f"{path}: no compressed tensor named '{name}' (it holds: {', '.join(n for n, _ in items)})")
    if len(items) != 1:
        raise TnetError(
            f"{path} holds {len(items)} compressed tensors; choose one with name= "
            f"(one of: {', '.join(n for n, _ in items)}) or use load_all()"
        )
    return items[0][1]


def load_all(path: _Path) -> Dict[str, Decomposition]:
    """Every compressed tensor of a tnet container, by name."""
    return dict(_tnet.load_all(path))


def compress_file(
    input: _Path,
    output: _Path,
    format: str = "tt",
    *,
    rank: Optional[int] = None,
    rel_eps: Optional[float] = None,
    abs_eps: Optional[float] = None,
    order: Optional[int] = None,
    min_size: int = 4096,
    include: Sequence[str] = (),
    blocks: Optional[int] = None,
) -> Dict[str, Any]:
    """Compresses every 2-D float weight of a ``.safetensors`` or ``.npz`` model (the
    ones matching ``include`` patterns, of at least ``min_size`` entries) into a tnet
    container, as ``tnet compress`` does; the output is written atomically and never
    replaces the input. Returns ``{"tensors": [per-weight report], "totals": {..}}``
    (layout, ranks, parameters, measured relative error)."""
    text = _tnet.compress_file(
        input,
        output,
        format,
        rank=rank,
        rel_eps=rel_eps,
        abs_eps=abs_eps,
        order=order,
        min_size=min_size,
        include=list(include),
        blocks=blocks,
    )
    return json.loads(text)


def reconstruct_file(input: _Path, output: _Path) -> None:
    """Rebuilds the dense weights of a tnet container into a ``.safetensors`` file."""
    _tnet.reconstruct_file(input, output)


# -----------------------------------------------------------------------------------------
# TensorLy
# -----------------------------------------------------------------------------------------


def to_tensorly(y: Decomposition) -> Any:
    """The TensorLy object holding the same tensor: ``TTTensor`` (tt), ``TRTensor``
    (tr), ``TuckerTensor`` (tucker). Needs ``tensorly``; HT and BT have no TensorLy type."""
    import tensorly as tl  # noqa: F401  (imported for its error message when missing)
    from tensorly.tr_tensor import TRTensor
    from tensorly.tt_tensor import TTTensor
    from tensorly.tucker_tensor import TuckerTensor

    if y.matrix_modes is not None:
        raise TnetError("to_tensorly: a tensorized matrix has no TensorLy equivalent; convert its tensor with to_dense()")
    cores = y.cores
    if y.format == "tt":
        return TTTensor(cores)
    if y.format == "tr":
        return TRTensor(cores)
    if y.format == "tucker":
        return TuckerTensor((cores[0], cores[1:]))
    raise TnetError(f"to_tensorly: TensorLy has no {y.format} tensor (tt, tr and tucker convert)")


def from_tensorly(t: Any) -> Decomposition:
    """A tnet decomposition from a TensorLy ``TTTensor``, ``TRTensor``, ``TuckerTensor``
    (or a plain ``(core, factors)`` pair / list of TT cores is not guessed: pass the
    TensorLy object)."""
    from tensorly.tr_tensor import TRTensor
    from tensorly.tt_tensor import TTTensor
    from tensorly.tucker_tensor import TuckerTensor

    if isinstance(t, TTTensor):
        return from_cores("tt", list(t.factors))
    if isinstance(t, TRTensor):
        return from_cores("tr", list(t.factors))
    if isinstance(t, TuckerTensor):
        core, factors = t
        return from_cores("tucker", [core, *factors])
    raise TnetError(f"from_tensorly: expected a TTTensor, TRTensor or TuckerTensor, got {type(t).__name__}")
