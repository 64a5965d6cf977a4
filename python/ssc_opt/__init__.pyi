# Type stubs of the ssc_opt package (the native module's classes and functions, re-exported).
from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__version__: str

ModelLike = Union[str, "PathLike[str]", bytes, bytearray, Any]
"""A path, serialized bytes, or an ``onnx.ModelProto`` (anything with ``SerializeToString()``)."""

Dims = Sequence[Union[int, str, None]]
InputShapes = Union[Mapping[str, Dims], Sequence[Tuple[str, Dims]]]

class Error(Exception):
    """Base class of every error ssc_opt raises."""

class BadModelError(Error, ValueError):
    """The model is unreadable, truncated or inconsistent."""

class UnsupportedOpError(Error, NotImplementedError):
    """The model uses an op the chosen engine cannot run."""

class VerificationError(Error):
    """The optimised model drifted past ``verify_tol`` from the original."""

class InvalidArgumentError(Error, ValueError):
    """The request does not fit the model (unknown input, wrong dtype or shape, bad option)."""

class FileError(Error, OSError):
    """Reading or writing a file failed."""

class InternalError(Error, RuntimeError):
    """A bug in ssc-opt (a Rust panic caught at the boundary) or a host limit."""

class Optimized:
    """The result of :func:`optimize`."""

    @property
    def model_bytes(self) -> bytes:
        """The optimised model, serialised (exactly what ``save(path)`` writes)."""
    @property
    def report(self) -> Dict[str, Any]:
        """A new dict with the content of ``ssc-opt --report json``: ``optimize`` (with
        ``macs_before``, ``macs_after``, and per-layer rows under ``rewrite.layers``) and
        ``verification``."""
    def summary(self) -> str:
        """One line: nodes and GMACs before and after, what fired, how verification went."""
    def save(self, path: Union[str, "PathLike[str]"], external_data: bool = False) -> None:
        """Write the model atomically (never a partial file), replacing an existing file;
        with ``external_data`` the weights go to ``path + ".data"``."""
    def to_onnx(self) -> Any:
        """The model as an ``onnx.ModelProto`` (needs the ``onnx`` package)."""

def optimize(
    model: ModelLike,
    *,
    input_shapes: Optional[InputShapes] = None,
    verify: Union[int, bool] = 2,
    verify_tol: float = 1e-4,
    rewrite: bool = True,
    cost_model: str = "calibrated",
) -> Optimized:
    """Optimise a model as ``ssc-opt IN -o OUT`` does: exact clean-ups, then (with
    ``rewrite``) structure-aware rewriting priced by ``cost_model`` (``"calibrated"``,
    ``"macs"`` or a calibration JSON path), then verification of the result against the
    original on ``verify`` seeded random inputs through the reference executor.

    Raises :class:`VerificationError` when an output drifts more than ``verify_tol``
    (norm-wise: max|a-b| / max|a|), :class:`BadModelError` for an unreadable model."""

class NodeArg:
    """A graph input or output, like ``onnxruntime.NodeArg``."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> Optional[List[Union[int, str, None]]]:
        """Known sizes as ints, symbolic dimensions as their names, ``None`` for unknown."""
    @property
    def type(self) -> str:
        """``"tensor(float)"``, ``"tensor(int64)"``, ..."""

class InferenceSession:
    """A model ready to run many times, shaped like ``onnxruntime.InferenceSession``.

    ``engine="auto"`` runs the JIT when it covers the model, else the reference executor;
    ``"jit"`` and ``"reference"`` force one. ``threads`` is the JIT's worker count (``None`` or 0:
    one per core). ``input_shapes`` fixes symbolic input dimensions; otherwise a model with
    symbolic dimensions is compiled per distinct set of fed shapes.

    ``run`` releases the GIL; several threads may call it at once on one session (each call
    gets its own arena from a pool). Inputs are borrowed without a copy when they are
    C-contiguous arrays of the input's dtype; do not write to them during a call.

    ``sess_options`` (its ``intra_op_num_threads``), ``providers`` and ``provider_options`` are
    accepted so onnxruntime code runs unchanged."""

    def __init__(
        self,
        model: ModelLike,
        sess_options: Any = None,
        providers: Any = None,
        provider_options: Any = None,
        *,
        threads: Optional[int] = None,
        engine: str = "auto",
        input_shapes: Optional[InputShapes] = None,
    ) -> None: ...
    def run(
        self,
        output_names: Optional[Sequence[str]],
        input_feed: Mapping[str, Any],
        run_options: Any = None,
    ) -> List[np.ndarray]:
        """Run the model; returns the requested outputs (all, in graph order, for ``None``)."""
    def get_inputs(self) -> List[NodeArg]: ...
    def get_outputs(self) -> List[NodeArg]: ...
    @property
    def engine(self) -> str:
        """``"jit"`` or ``"reference"``: the engine that runs the model."""
    @property
    def fallback_nodes(self) -> List[str]:
        """Nodes the JIT runs through reference kernels, as ``"node (OpType)"``."""

def inspect(model: ModelLike, *, input_shapes: Optional[InputShapes] = None) -> Dict[str, Any]:
    """Opsets, inputs, outputs, op counts, parameters and per-layer MACs: the content of
    ``ssc-opt inspect --json``."""

def analyze(model: ModelLike, *, epsilon: float = 0.0) -> Dict[str, Any]:
    """The weight structure of every Conv, Gemm and MatMul with a constant weight, by node
    (``nodes``; ``skipped`` names the others and why): kernel classes, tap support, channel
    blocks, SSC split, unified weights. ``epsilon > 0`` treats ``|w| <= epsilon`` as zero and
    marks every fact approximate."""
