"""Type stubs of the extension module `tnet._tnet` (the engine of the `tnet` package)."""

from os import PathLike
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, PathLike[str]]
_Float = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]

FORMATS: List[str]

class TnetError(ValueError):
    """Bad input to tnet; the message says what to fix."""

class Decomposition:
    """A tensor (or a tensorized weight matrix) in one of tnet's formats."""

    @property
    def format(self) -> str: ...
    @property
    def shape(self) -> List[int]: ...
    @property
    def tensor_shape(self) -> List[int]: ...
    @property
    def dtype(self) -> str: ...
    @property
    def ranks(self) -> List[int]: ...
    @property
    def tree(self) -> Optional[str]: ...
    @property
    def n_blocks(self) -> Optional[int]: ...
    @property
    def matrix_modes(self) -> Optional[Tuple[List[int], List[int]]]: ...
    @property
    def n_params(self) -> int: ...
    @property
    def compression_ratio(self) -> float: ...
    @property
    def core_names(self) -> List[str]: ...
    @property
    def cores(self) -> List[_Float]: ...
    @property
    def error_bound(self) -> Optional[float]: ...
    @property
    def rel_error_bound(self) -> Optional[float]: ...
    @property
    def rel_error(self) -> Optional[float]: ...
    @property
    def input_norm(self) -> Optional[float]: ...
    @property
    def singular_values(self) -> Optional[List[List[float]]]: ...
    @property
    def error_history(self) -> Optional[List[float]]: ...
    def to_dense(self) -> _Float: ...
    def norm(self) -> float: ...
    def entry(self, index: Sequence[int]) -> float: ...
    def distance(self, x: _Float) -> float: ...
    def round(
        self,
        *,
        rank: Optional[int] = None,
        rel_eps: Optional[float] = None,
        abs_eps: Optional[float] = None,
    ) -> "Decomposition": ...
    def inner(self, other: "Decomposition") -> float: ...
    def save(self, path: _Path, *, name: str = "tensor") -> None: ...
    def __add__(self, other: "Decomposition") -> "Decomposition": ...
    def __sub__(self, other: "Decomposition") -> "Decomposition": ...
    def __mul__(self, alpha: float) -> "Decomposition": ...
    def __rmul__(self, alpha: float) -> "Decomposition": ...
    def __neg__(self) -> "Decomposition": ...

class Matrix:
    """A weight matrix W (M x N) held in a tensor format, applied without being formed."""

    @staticmethod
    def from_dense(
        w: _Float,
        format: str,
        *,
        out_modes: Optional[Sequence[int]] = None,
        in_modes: Optional[Sequence[int]] = None,
        order: Optional[int] = None,
        rank: Optional[int] = None,
        rel_eps: Optional[float] = None,
        abs_eps: Optional[float] = None,
        exact: bool = False,
        tree: Optional[str] = None,
        layout: Optional[str] = None,
        blocks: Optional[int] = None,
    ) -> "Matrix": ...
    @staticmethod
    def random(
        format: str,
        n_out: int,
        n_in: int,
        rank: int,
        *,
        out_modes: Optional[Sequence[int]] = None,
        in_modes: Optional[Sequence[int]] = None,
        order: Optional[int] = None,
        dtype: str = "float32",
        init: str = "glorot",
        seed: int = 0,
        tree: Optional[str] = None,
        layout: Optional[str] = None,
        blocks: Optional[int] = None,
    ) -> "Matrix": ...
    @property
    def format(self) -> str: ...
    @property
    def shape(self) -> Tuple[int, int]: ...
    @property
    def out_modes(self) -> List[int]: ...
    @property
    def in_modes(self) -> List[int]: ...
    @property
    def dtype(self) -> str: ...
    @property
    def n_params(self) -> int: ...
    @property
    def compression_ratio(self) -> float: ...
    @property
    def error_bound(self) -> Optional[float]: ...
    @property
    def rel_error_bound(self) -> Optional[float]: ...
    @property
    def params(self) -> List[_Float]: ...
    def set_params(self, params: Sequence[_Float]) -> None: ...
    def apply(self, x: _Float) -> _Float: ...
    def apply_transpose(self, dy: _Float) -> _Float: ...
    def backward(self, x: _Float, dy: _Float) -> Tuple[_Float, List[_Float]]: ...
    def to_dense(self) -> _Float: ...
    def norm(self) -> float: ...

def decompose(
    x: _Float,
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
) -> Decomposition: ...
def hosvd(
    x: _Float,
    *,
    rank: Optional[int] = None,
    rel_eps: Optional[float] = None,
    abs_eps: Optional[float] = None,
    exact: bool = False,
    sequential: bool = True,
    mode_ranks: Optional[Sequence[int]] = None,
    measure_error: bool = True,
) -> Decomposition: ...
def hooi(
    x: _Float,
    *,
    rank: Optional[int] = None,
    rel_eps: Optional[float] = None,
    abs_eps: Optional[float] = None,
    exact: bool = False,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> Decomposition: ...
def from_cores(format: str, cores: Sequence[_Float], *, blocks: Optional[int] = None) -> Decomposition: ...
def load_all(path: _Path) -> List[Tuple[str, Decomposition]]: ...
def compress_file(
    input: _Path,
    output: _Path,
    format: str,
    *,
    rank: Optional[int] = None,
    rel_eps: Optional[float] = None,
    abs_eps: Optional[float] = None,
    order: Optional[int] = None,
    min_size: int = 4096,
    include: Sequence[str] = ...,
    blocks: Optional[int] = None,
) -> str: ...
def reconstruct_file(input: _Path, output: _Path) -> None: ...
