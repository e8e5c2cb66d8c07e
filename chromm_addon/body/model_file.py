"""SMPL-X model files (`SMPLX_NEUTRAL.npz`) read with numpy only: no torch, no pickles by default.

The path comes from the command line, the environment variable CHROMM_SMPLX_MODEL, or the add-on
preferences, in that order of precedence (callers pass what they have to `resolve_model_path`).
"""

import dataclasses
import functools
import os
import pickle
import zipfile

import numpy as np

from ..errors import ChrommError
from .skeleton import NUM_JOINTS, PARENTS

ENV_VAR = "CHROMM_SMPLX_MODEL"
NUM_SHAPE_SPACE = 300  # shapedirs columns before the expression space (SMPL-X v1.1)


@dataclasses.dataclass
class SmplxModel:
    """The arrays of an SMPL-X model file that the project uses (float64 unless noted)."""

    path: str
    v_template: np.ndarray    # (Nv, 3)
    faces: np.ndarray         # (Nf, 3) int64
    shapedirs: np.ndarray     # (Nv, 3, num_betas_available)
    exprdirs: np.ndarray      # (Nv, 3, num_expression_available)
    posedirs: np.ndarray      # (Nv, 3, 486)
    J_regressor: np.ndarray   # (55, Nv) dense
    weights: np.ndarray       # (Nv, 55)
    parents: np.ndarray       # (55,) int64, parents[0] == -1
    hands_mean_left: np.ndarray   # (45,)
    hands_mean_right: np.ndarray  # (45,)

    @property
    def num_vertices(self):
        return self.v_template.shape[0]

    def shaped_vertices(self, betas, expression=None):
        """Template plus shape (and expression) blend shapes: (..., Nv, 3).

        betas (..., B), expression (..., E); leading dimensions batch several bodies.
        """
        betas = np.asarray(betas, dtype=np.float64)
        dirs = self.shapedirs[:, :, :betas.shape[-1]]
        v = self.v_template + np.einsum("vck,...k->...vc", dirs, betas)
        if expression is not None and np.shape(expression)[-1]:
            expression = np.asarray(expression, dtype=np.float64)
            v = v + np.einsum("vck,...k->...vc", self.exprdirs[:, :, :expression.shape[-1]],
                              expression)
        return v

    def rest_joints(self, betas, expression=None):
        """(..., 55, 3) rest joints for shapes (..., B) (and expressions (..., E)).

        J_regressor on the shaped template, computed in joint space: the regressor is linear, so
        it is applied once to the template and the blend directions (cached), not per body.
        """
        betas = np.asarray(betas, dtype=np.float64)
        j = self._joint_template + np.einsum(
            "jck,...k->...jc", self._joint_shapedirs[:, :, :betas.shape[-1]], betas)
        if expression is not None and np.shape(expression)[-1]:
            expression = np.asarray(expression, dtype=np.float64)
            j = j + np.einsum("jck,...k->...jc",
                              self._joint_exprdirs[:, :, :expression.shape[-1]], expression)
        return j

    @functools.cached_property
    def _joint_template(self):
        return self.J_regressor @ self.v_template

    @functools.cached_property
    def _joint_shapedirs(self):
        return np.einsum("jv,vck->jck", self.J_regressor, self.shapedirs)

    @functools.cached_property
    def _joint_exprdirs(self):
        return np.einsum("jv,vck->jck", self.J_regressor, self.exprdirs)


def resolve_model_path(cli_path=None, prefs_path=None):
    """The model file to use: command line, then CHROMM_SMPLX_MODEL, then preferences; or None."""
    for candidate in (cli_path, os.environ.get(ENV_VAR), prefs_path):
        if candidate:
            return os.path.expanduser(str(candidate))
    return None


def configured_model(cli_path=None, prefs_path=None):
    """The model file `resolve_model_path` picks, loaded; None when none is configured."""
    path = resolve_model_path(cli_path, prefs_path)
    return load_smplx_model(path) if path else None


def load_smplx_model(path, allow_pickle=False):
    """Load an SMPL-X .npz (or, with allow_pickle, a .pkl) and check every array's shape."""
    path = str(path)
    if not os.path.exists(path):
        raise ChrommError(f"{path}: SMPL-X model file not found (set --smplx or {ENV_VAR})")
    data = _read_arrays(path, allow_pickle)
    for key in ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table"):
        if key in data.get(_PICKLED, ()):
            raise ChrommError(f"{path}: '{key}' is stored as pickled objects, which are refused "
                              "by default")
        if key not in data:
            raise ChrommError(f"{path}: not an SMPL-X model file (missing '{key}')")
    v_template = _numeric(path, "v_template", data["v_template"])
    nv = v_template.shape[0] if v_template.ndim == 2 else -1
    if v_template.shape != (nv, 3) or nv < 1:
        raise ChrommError(f"{path}: 'v_template' has shape {v_template.shape}, expected (Nv, 3)")
    shapedirs = _numeric(path, "shapedirs", data["shapedirs"])
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (nv, 3):
        raise ChrommError(f"{path}: 'shapedirs' has shape {shapedirs.shape}, expected ({nv}, 3, K)")
    # v1.1 files hold 300 shape + 100 expression components; v1.0 files 10 + 10.
    n_shape = NUM_SHAPE_SPACE if shapedirs.shape[2] > NUM_SHAPE_SPACE else shapedirs.shape[2] // 2
    posedirs = _numeric(path, "posedirs", data["posedirs"])
    if posedirs.shape != (nv, 3, (NUM_JOINTS - 1) * 9):
        raise ChrommError(f"{path}: 'posedirs' has shape {posedirs.shape}, expected ({nv}, 3, 486)")
    j_reg = data["J_regressor"]
    if isinstance(j_reg, np.ndarray) and j_reg.dtype == object and j_reg.shape == ():
        j_reg = j_reg.item()  # a pickled sparse matrix inside an .npz read with allow_pickle
    if hasattr(j_reg, "toarray"):  # scipy.sparse in some pickles
        j_reg = j_reg.toarray()
    j_reg = _numeric(path, "J_regressor", j_reg)
    if j_reg.shape != (NUM_JOINTS, nv):
        raise ChrommError(f"{path}: 'J_regressor' has shape {j_reg.shape}, expected (55, {nv})")
    weights = _numeric(path, "weights", data["weights"])
    if weights.shape != (nv, NUM_JOINTS):
        raise ChrommError(f"{path}: 'weights' has shape {weights.shape}, expected ({nv}, 55)")
    faces = _numeric(path, "f", data["f"], np.int64)
    if (faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0
            or faces.min() < 0 or faces.max() >= nv):
        raise ChrommError(f"{path}: 'f' must be (Nf, 3) vertex indices below {nv}")
    kintree = _numeric(path, "kintree_table", data["kintree_table"], np.int64)
    if kintree.shape != (2, NUM_JOINTS):
        raise ChrommError(f"{path}: 'kintree_table' has shape {kintree.shape}, expected (2, 55)")
    parents = kintree[0].copy()
    parents[0] = -1
    if not np.array_equal(parents, PARENTS):
        raise ChrommError(f"{path}: 'kintree_table' is not the SMPL-X 55-joint tree")
    hands = {}
    for side in ("l", "r"):
        key = f"hands_mean{side}"
        hands[side] = _numeric(path, key, data[key]).reshape(-1) if key in data else np.zeros(45)
        if hands[side].shape != (45,):
            raise ChrommError(f"{path}: '{key}' has {hands[side].size} values, expected 45")
    return SmplxModel(path=path, v_template=v_template, faces=faces,
                      shapedirs=shapedirs[:, :, :n_shape], exprdirs=shapedirs[:, :, n_shape:],
                      posedirs=posedirs, J_regressor=j_reg, weights=weights, parents=parents,
                      hands_mean_left=hands["l"], hands_mean_right=hands["r"])


def _numeric(path, key, value, dtype=np.float64):
    """The array under `key` as a finite `dtype` array; ChrommError if it is not one."""
    try:
        a = np.asarray(value)
        if a.dtype.kind not in "biuf":
            raise TypeError(a.dtype)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ChrommError(f"{path}: '{key}' contains NaN or infinite values")
        return a.astype(dtype)
    except (TypeError, ValueError):
        raise ChrommError(f"{path}: '{key}' is not a numeric array") from None


_PICKLED = "\0pickled"  # entry of _read_arrays' result: keys skipped because they hold objects


def _read_arrays(path, allow_pickle):
    if path.endswith(".pkl"):
        if not allow_pickle:
            raise ChrommError(f"{path}: .pkl model files are pickles and are refused by default; "
                              "use SMPLX_NEUTRAL.npz")
        return read_model_pickle(path)
    try:
        with np.load(path, allow_pickle=allow_pickle) as npz:
            out = {}
            for key in npz.files:
                try:
                    out[key] = npz[key]
                except ValueError:
                    # Object arrays (joint2num, part2num) are not needed; skip rather than unpickle.
                    out.setdefault(_PICKLED, []).append(key)
            return out
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ChrommError(f"{path}: not a readable SMPL-X .npz ({exc})") from None


# ------------------------------------------------------------------ .pkl files without pickles' risks

REGISTER_HINT = ("register (free, non-commercial licence) at https://smpl-x.is.tue.mpg.de, download "
                 "'SMPL-X v1.1 (NPZ+PKL)' and choose SMPLX_NEUTRAL.npz (or .pkl) from it")


class _Sparse:
    """Stands in for a pickled scipy.sparse CSC/CSR matrix: keeps its state, builds it dense."""

    csc = True

    def __setstate__(self, state):
        self.state = state

    def toarray(self):
        st = self.state
        shape = tuple(int(n) for n in st.get("_shape", st.get("shape")))
        data, indices, indptr = (np.asarray(st[k]) for k in ("data", "indices", "indptr"))
        dense = np.zeros(shape, dtype=np.float64)
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        if self.csc:
            np.add.at(dense, (indices, major), data)
        else:
            np.add.at(dense, (major, indices), data)
        return dense


class _SparseCsr(_Sparse):
    csc = False


class _Chumpy:
    """Stands in for a pickled chumpy `Ch` (SMPL v1.0-era files): its value is the state's `x`."""

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}

    def value(self):
        if "x" not in self.state:
            raise pickle.UnpicklingError("a chumpy expression without a stored value")
        return np.asarray(self.state["x"])


def _numpy_reconstruct():
    return np.ndarray.__reduce__(np.zeros(1))[0]


class SafeUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays, dtypes and scalars, plus stand-ins for scipy.sparse matrices
    and chumpy arrays (neither package is imported or needed). Any other class or function in the
    file is refused, so a .pkl cannot run code while it is read."""

    def find_class(self, module, name):
        numpy_core = ("numpy.core.multiarray", "numpy._core.multiarray")
        if module in numpy_core and name == "_reconstruct":
            return _numpy_reconstruct()
        if module in numpy_core and name == "scalar":
            return _numpy_scalar
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return _Sparse if name == "csc_matrix" else _SparseCsr
        if module.startswith("chumpy") and name == "Ch":
            return _Chumpy
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module == "_codecs" and name == "encode":  # bytes in protocol-2 pickles from Python 3
            return _latin1_bytes
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from the pickle")


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("a numpy scalar of an object dtype")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _latin1_bytes(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected text encoding in the pickle")
    return text.encode("latin1")


def _reconstructor(cls, base, state):
    if cls not in (_Sparse, _SparseCsr, _Chumpy) or base is not object or state is not None:
        raise pickle.UnpicklingError(f"refused to rebuild {getattr(cls, '__name__', cls)!r}")
    return object.__new__(cls)


def read_model_pickle(path):
    """The arrays of an SMPL-X (or SMPL) .pkl read with `SafeUnpickler`, sparse made dense."""
    with open(path, "rb") as fh:
        try:
            data = SafeUnpickler(fh, encoding="latin1").load()
            if not isinstance(data, dict):
                raise pickle.UnpicklingError(f"it holds a {type(data).__name__}, not a dict")
            out = {}
            for key, value in data.items():
                if isinstance(value, _Sparse):
                    value = value.toarray()
                elif isinstance(value, _Chumpy):
                    value = value.value()
                out[str(key)] = value
            return out
        except Exception as exc:  # a corrupt pickle can raise nearly anything
            raise ChrommError(f"{path}: cannot read the SMPL-X pickle "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def convert_pkl_to_npz(path, out_dir=None):
    """Write the .npz the project reads (same name, `.npz`) from a .pkl model; returns its path.

    The .npz goes beside the .pkl, or into `out_dir` when given. Only validated arrays are
    written (dense, numeric), so the result loads with `load_smplx_model` and no pickles.
    """
    path = str(path)
    model = load_smplx_model(path, allow_pickle=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    dest = os.path.join(out_dir or os.path.dirname(os.path.abspath(path)), stem + ".npz")
    kintree = np.stack([model.parents, np.arange(NUM_JOINTS)]).astype(np.int64)
    from ..io.atomic import atomic_output

    with atomic_output(dest, suffix=".npz") as tmp:
        np.savez(tmp, v_template=model.v_template, f=model.faces,
                 shapedirs=np.concatenate([model.shapedirs, model.exprdirs], axis=2),
                 posedirs=model.posedirs, J_regressor=model.J_regressor, weights=model.weights,
                 kintree_table=kintree, hands_meanl=model.hands_mean_left,
                 hands_meanr=model.hands_mean_right)
    return dest


def describe_model_file(path):
    """One line: "10475 vertices, 55 joints, neutral", or raises ChrommError saying what is wrong."""
    model = load_smplx_model(path, allow_pickle=str(path).endswith(".pkl"))
    name = os.path.basename(str(path)).upper()
    gender = next((g for g in ("NEUTRAL", "FEMALE", "MALE") if g in name), None)
    line = f"{model.num_vertices} vertices, {NUM_JOINTS} joints"
    if gender == "NEUTRAL":
        return line + ", neutral"
    if gender:
        return line + f", {gender.lower()} (CHROMM's bodies are neutral: choose SMPLX_NEUTRAL)"
    return line + ", gender not in the file name (CHROMM expects SMPLX_NEUTRAL)"
