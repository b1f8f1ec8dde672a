"""NVIDIA StyleGAN2 network pickles, read without executing anything.

Two kinds of ``.pkl`` file hold most published StyleGAN2 weights:

* **stylegan2-ada-pytorch / stylegan3** snapshots: a dict with ``G``, ``D``, ``G_ema``,
  ``augment_pipe``, ``training_set_kwargs``.  Each network is a
  ``torch_utils.persistence`` object: a call of ``_reconstruct_persistent_obj(meta)`` whose
  ``meta`` carries the *source code* of the defining module (``module_src``), the class
  name and the module's ``__dict__`` (``state``).  NVIDIA's loader ``exec``\\ s that source.
* **TensorFlow StyleGAN2 / stylegan2-ada** pickles: the tuple ``(G, D, Gs)`` of
  ``dnnlib.tflib.network.Network`` objects, whose state carries ``build_module_src`` (also
  ``exec``\\ ed by NVIDIA's ``__setstate__``) and the TF variables as numpy arrays.

:class:`SafeUnpickler` resolves only the globals those streams need for tensors, arrays
and plain containers, each to a function of this module or to a data-only constructor
(``torch._utils._rebuild_tensor_v2``, ``numpy.dtype``, ``collections.OrderedDict``).  The
two code-carrying globals map to stand-ins that keep the class name and the state and
never look at the source.  Any other global is refused with an error naming it, before
anything of it runs.  The networks are then mapped to the rosinality ``g_ema`` layout
(``G_ema`` or ``Gs``, never the training ``G``), with ``w_avg`` / ``dlatent_avg`` as
``latent_avg``; networks that layout cannot hold (conditional, ``orig``/``resnet``
architectures, StyleGAN3-T/R, progressive TF configs) are refused by name.
"""

from __future__ import annotations

import collections
import io
import logging
import pickle
import warnings
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch

from ..errors import InputError, ModelError

log = logging.getLogger(__name__)

#: the FIR filter every StyleGAN2 ``resample_filter`` buffer must hold ([1,3,3,1], normalised)
_FIR = np.outer([1.0, 3.0, 3.0, 1.0], [1.0, 3.0, 3.0, 1.0]) / 64.0


class RefusedGlobal(pickle.UnpicklingError):
    """The stream asked for a global outside the allow-list; nothing of it ran."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


# -- stand-ins for the globals a network pickle references ----------------------------------
class PersistentObject:
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` stands for:
    the class name and the module's state.  ``meta["module_src"]`` is never read."""

    __slots__ = ("class_name", "state")

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def __repr__(self):  # pragma: no cover - debugging aid
        return f"PersistentObject({self.class_name})"


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict):
        raise pickle.UnpicklingError("a torch_utils.persistence object without its meta dict")
    if meta.get("type") != "class":
        raise pickle.UnpicklingError(f"a torch_utils.persistence object of type {meta.get('type')!r}; "
                                     "only persistent classes are read")
    if meta.get("version") != 6:
        log.warning("torch_utils.persistence format version %r (expected 6)", meta.get("version"))
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise pickle.UnpicklingError("a torch_utils.persistence object without class_name and state")
    return PersistentObject(class_name, state)


class TFNetwork:
    """Stands for ``dnnlib.tflib.network.Network``: ``__setstate__`` only stores the dict
    (NVIDIA's exec's ``build_module_src``; this one never reads it)."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("a dnnlib.tflib.network.Network whose state is not a dict")
        self.state = state


class EasyDict(dict):
    """Stands for ``dnnlib.util.EasyDict`` (a plain dict subclass)."""


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter whose data is not a tensor")
    return data


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError("a tensor whose storage is not a torch storage")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, tuple(size), tuple(stride), False,
                                           collections.OrderedDict())


def _load_from_bytes(blob):
    """A storage written as a legacy ``torch.save`` blob: read with ``weights_only=True``."""
    if not isinstance(blob, (bytes, bytearray)):
        raise pickle.UnpicklingError("a storage that is not a byte string")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        out = torch.load(io.BytesIO(bytes(blob)), map_location="cpu", weights_only=True)
    if not isinstance(out, torch.storage.TypedStorage):
        raise pickle.UnpicklingError("a storage blob that holds no storage")
    return out


def _plain_dtype(dt: np.dtype) -> np.dtype:
    if dt.kind not in "biufc?" or dt.fields is not None or dt.subdtype is not None:
        raise pickle.UnpicklingError(f"numpy dtype {dt} is not a plain numeric type")
    return dt


def _dtype(obj, align=False, copy=False):
    if not isinstance(obj, str):
        raise pickle.UnpicklingError("a numpy dtype given by something other than its name")
    # copy=True as numpy's own reduce asks: the BUILD that follows must not touch numpy's singletons
    return _plain_dtype(np.dtype(obj, align=bool(align), copy=True))


def _scalar(dtype, data):
    if not isinstance(dtype, np.dtype) or not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("a numpy scalar that is not a plain number")
    return np.frombuffer(bytes(data), dtype=_plain_dtype(dtype), count=1)[0]


class _NDArrayMarker:
    """Stands for the ``numpy.ndarray`` global: only :func:`_reconstruct` accepts it."""

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("the stream calls numpy.ndarray directly; only _reconstruct is read")


_NDARRAY = _NDArrayMarker()


def _reconstruct(cls, shape, dtype_code):
    if cls is not _NDARRAY:
        raise pickle.UnpicklingError("numpy _reconstruct of something other than numpy.ndarray")
    return _SafeArray()


class _SafeArray:
    """The BUILD target of a pickled ndarray: checks the dtype, then makes the array from bytes."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError("a numpy array with an unexpected state")
        _version, shape, dtype, fortran, raw = state
        if not isinstance(dtype, np.dtype) or not isinstance(raw, (bytes, bytearray)):
            raise pickle.UnpicklingError("a numpy array that is not plain numbers")
        _plain_dtype(dtype)
        arr = np.frombuffer(bytes(raw), dtype=dtype).copy()
        self.array = arr.reshape(tuple(shape), order="F" if fortran else "C")


_NUMPY = {"scalar": _scalar, "_reconstruct": _reconstruct}
ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("builtins", "set"): set,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): _NDARRAY,
    **{(mod, name): fn for mod in ("numpy.core.multiarray", "numpy._core.multiarray") for name, fn in _NUMPY.items()},
}


class SafeUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED`; refuses every other global and any persistent id."""

    def find_class(self, module, name):
        fn = ALLOWED.get((module, name))
        if fn is None:
            raise RefusedGlobal(f"{module}.{name}")
        return fn

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("the stream uses persistent ids (a torch.save file, not a network pickle)")


def _arrays(obj):
    """Replace the BUILD targets of numpy arrays by the arrays, recursively."""
    if isinstance(obj, _SafeArray):
        return obj.array
    if isinstance(obj, (TFNetwork, PersistentObject)):
        obj.state = _arrays(getattr(obj, "state", None))
        return obj
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _arrays(obj[k])
        return obj
    if isinstance(obj, list):
        return [_arrays(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_arrays(v) for v in obj)
    return obj


def read_pickle(path) -> object:
    """The object of a network pickle, through :class:`SafeUnpickler`; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such network pickle: {path}")
    try:
        with open(path, "rb") as f:
            obj = SafeUnpickler(f).load()
    except RefusedGlobal as e:
        raise ModelError(f"refusing to load {path}: the pickle references {e.name}, which is not a tensor, "
                         "array or plain container; nothing in it was run") from None
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise ModelError(f"cannot read {path} as a NVIDIA network pickle: {type(e).__name__}: {first}") from None
    return _arrays(obj)


def is_network_pickle(path) -> bool:
    """True for a plain pickle stream that is not a ``torch.save`` file (zip, or the legacy
    format, which starts with the pickled magic number)."""
    import zipfile
    path = Path(path)
    if not path.is_file() or zipfile.is_zipfile(path):
        return False
    with open(path, "rb") as f:
        head = f.read(3)
    return len(head) == 3 and head[0] == 0x80 and head[1] >= 2 and head[2] != 0x8A  # 0x8a: LONG1 magic


# -- stylegan2-ada-pytorch / stylegan3 -> rosinality ------------------------------------------
def _flatten(obj: PersistentObject, prefix: str, out: Dict[str, torch.Tensor],
             modules: Dict[str, PersistentObject]) -> None:
    modules[prefix.rstrip(".")] = obj
    st = obj.state
    for group in ("_parameters", "_buffers"):
        for name, value in (st.get(group) or {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise ModelError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value.detach().to(torch.float32)
    for name, child in (st.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise ModelError(f"network module {prefix}{name} is a {type(child).__name__}, not a persisted module "
                             "(a network pickle of an unknown kind)")
        _flatten(child, f"{prefix}{name}.", out, modules)


def _check_filter(t: torch.Tensor, name: str) -> None:
    if tuple(t.shape) != (4, 4) or not np.allclose(t.numpy(), _FIR, atol=1e-6):
        raise ModelError(f"{name} is not the [1,3,3,1] FIR filter: this StyleGAN2 cannot be converted")


def convert_ada(snapshot) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, dict]:
    """``(rosinality g_ema state dict, latent_avg, info)`` of a stylegan2-ada-pytorch /
    stylegan3 snapshot dict (its ``G_ema``)."""
    if not isinstance(snapshot, dict) or "G_ema" not in snapshot:
        raise ModelError("not a stylegan2-ada-pytorch / stylegan3 snapshot: no 'G_ema' entry")
    g = snapshot["G_ema"]
    if not isinstance(g, PersistentObject) or g.class_name != "Generator":
        raise ModelError(f"G_ema is a {getattr(g, 'class_name', type(g).__name__)}, not a Generator")
    nv: Dict[str, torch.Tensor] = {}
    mods: Dict[str, PersistentObject] = {}
    _flatten(g, "", nv, mods)
    st = g.state
    z_dim, w_dim, c_dim = st.get("z_dim"), st.get("w_dim"), st.get("c_dim", 0)
    R = st.get("img_resolution")
    if c_dim:
        raise ModelError(f"the generator is conditional (c_dim {c_dim}): the rosinality layout has no label input")
    if z_dim != w_dim:
        raise ModelError(f"z_dim {z_dim} differs from w_dim {w_dim}: the rosinality layout needs them equal")
    if st.get("img_channels", 3) != 3:
        raise ModelError(f"the generator makes {st.get('img_channels')} channels, not RGB")
    if "synthesis.input.weight" in nv or any(m.class_name == "SynthesisInput" for m in mods.values()):
        raise ModelError("this is a StyleGAN3 (alias-free, T/R) generator: it has no StyleGAN2 equivalent")
    if not isinstance(R, int) or R < 8 or R & (R - 1):
        raise ModelError(f"img_resolution {R!r} is not a power of two >= 8")
    for name, m in mods.items():
        arch = m.state.get("architecture")
        if m.class_name == "SynthesisBlock" and arch != "skip":
            raise ModelError(f"{name} has architecture {arch!r}: only 'skip' (config-e/f) generators convert")
        if m.class_name == "SynthesisLayer":
            if not m.state.get("use_noise", True):
                raise ModelError(f"{name} has no noise input (use_noise=False)")
            if m.state.get("activation", "lrelu") != "lrelu":
                raise ModelError(f"{name} uses activation {m.state.get('activation')!r}, not lrelu")
        if m.class_name == "FullyConnectedLayer" and name.startswith("mapping.") and \
                m.state.get("activation") != "lrelu":
            raise ModelError(f"{name} uses activation {m.state.get('activation')!r}, not lrelu")
    for k, v in nv.items():
        if k.endswith("resample_filter"):
            _check_filter(v, k)
    if any(k.startswith("mapping.embed") for k in nv):
        raise ModelError("the generator is conditional (mapping.embed): the rosinality layout has no label input")

    sd: Dict[str, torch.Tensor] = {}
    used = set()

    def take(key):
        if key not in nv:
            raise ModelError(f"G_ema has no {key}: not a StyleGAN2 generator of the expected layout")
        used.add(key)
        return nv[key]

    n_mlp = 0
    while f"mapping.fc{n_mlp}.weight" in nv:
        sd[f"style.{n_mlp + 1}.weight"] = take(f"mapping.fc{n_mlp}.weight").clone()
        sd[f"style.{n_mlp + 1}.bias"] = take(f"mapping.fc{n_mlp}.bias").clone()
        n_mlp += 1
    if n_mlp == 0:
        raise ModelError("G_ema has no mapping.fc0: not a StyleGAN2 generator")
    lr_mlp = float(mods["mapping.fc0"].state.get("bias_gain", 0.01))
    latent_avg = take("mapping.w_avg").clone().reshape(-1)

    def layer(src, dst, noise_index=None):
        sd[f"{dst}.conv.weight"] = take(f"{src}.weight")[None].clone()
        sd[f"{dst}.conv.modulation.weight"] = take(f"{src}.affine.weight").clone()
        sd[f"{dst}.conv.modulation.bias"] = take(f"{src}.affine.bias").clone()
        sd[f"{dst}.noise.weight"] = take(f"{src}.noise_strength").reshape(1).clone()
        sd[f"{dst}.activate.bias"] = take(f"{src}.bias").clone()
        sd[f"noises.noise_{noise_index}"] = take(f"{src}.noise_const")[None, None].clone()
        used.add(f"{src}.resample_filter")

    def torgb(src, dst):
        sd[f"{dst}.conv.weight"] = take(f"{src}.weight")[None].clone()
        sd[f"{dst}.conv.modulation.weight"] = take(f"{src}.affine.weight").clone()
        sd[f"{dst}.conv.modulation.bias"] = take(f"{src}.affine.bias").clone()
        sd[f"{dst}.bias"] = take(f"{src}.bias").reshape(1, -1, 1, 1).clone()

    sd["input.input"] = take("synthesis.b4.const")[None].clone()
    layer("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    used.add("synthesis.b4.resample_filter")
    log2 = R.bit_length() - 1
    for k in range(3, log2 + 1):
        b = f"synthesis.b{2 ** k}"
        layer(f"{b}.conv0", f"convs.{2 * (k - 3)}", 2 * k - 5)
        layer(f"{b}.conv1", f"convs.{2 * (k - 3) + 1}", 2 * k - 4)
        torgb(f"{b}.torgb", f"to_rgbs.{k - 3}")
        used.add(f"{b}.resample_filter")
    left = sorted(k for k in set(nv) - used if not k.endswith("resample_filter"))
    if left:
        raise ModelError(f"G_ema has tensors the StyleGAN2 layout cannot hold: {', '.join(left[:6])}"
                         + (" ..." if len(left) > 6 else ""))
    clamp = {m.state.get("conv_clamp") for m in mods.values() if m.class_name in ("SynthesisLayer", "ToRGBLayer")}
    info = {"kind": "stylegan2-ada-pytorch", "network": "G_ema", "lr_mlp": lr_mlp,
            "conv_clamp": sorted(c for c in clamp if c is not None) or None}
    return sd, latent_avg, info


# -- TensorFlow StyleGAN2 -> rosinality ---------------------------------------------------------
def _tf_params(net: TFNetwork) -> Dict[str, np.ndarray]:
    out: Dict[str, np.ndarray] = {}

    def walk(prefix, n):
        if not isinstance(n, TFNetwork):
            raise ModelError(f"TF component {prefix or 'Gs'} is a {type(n).__name__}, not a Network")
        for item in n.state.get("variables") or []:
            name, value = item
            out[prefix + name] = np.asarray(value, dtype=np.float32)
        for name, comp in (n.state.get("components") or {}).items():
            walk(f"{prefix}{name}/", comp)

    walk("", net)
    return out


def convert_tf(networks) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, dict]:
    """``(rosinality g_ema state dict, latent_avg, info)`` of a TF ``(G, D, Gs)`` pickle (its ``Gs``)."""
    if not (isinstance(networks, tuple) and len(networks) == 3 and isinstance(networks[2], TFNetwork)):
        raise ModelError("not a TensorFlow StyleGAN2 pickle: expected the tuple (G, D, Gs) of networks")
    gs = networks[2]
    tf = _tf_params(gs)
    for name in tf:
        if "ToRGB_lod" in name:
            raise ModelError(f"the TF network has {name}: a progressive (config A-D) generator, not StyleGAN2 config-e/f")
        if name.endswith("/Skip/weight"):
            raise ModelError(f"the TF network has {name}: a resnet generator, only skip (config-e/f) converts")
        if "LabelConcat" in name or "LabelEmbed" in name:
            raise ModelError(f"the TF network has {name}: a conditional generator")
    if "lod" in tf and float(tf["lod"]) != 0.0:
        raise ModelError(f"the TF network's lod is {float(tf['lod'])}, not 0")
    used = {"lod"}

    def take(key):
        if key not in tf:
            raise ModelError(f"Gs has no variable {key}: not a StyleGAN2 generator of the expected layout")
        used.add(key)
        return tf[key]

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    sd: Dict[str, torch.Tensor] = {}
    n_mlp = 0
    while f"mapping/Dense{n_mlp}/weight" in tf:
        sd[f"style.{n_mlp + 1}.weight"] = t(take(f"mapping/Dense{n_mlp}/weight").T)
        sd[f"style.{n_mlp + 1}.bias"] = t(take(f"mapping/Dense{n_mlp}/bias"))
        n_mlp += 1
    if n_mlp == 0:
        raise ModelError("Gs has no mapping/Dense0: not a StyleGAN2 generator")
    latent_avg = t(take("dlatent_avg")).reshape(-1)
    sd["input.input"] = t(take("synthesis/4x4/Const/const"))

    def layer(src, dst, flip=False):
        w = take(f"{src}/weight").transpose(3, 2, 0, 1)  # [kh,kw,I,O] -> [O,I,kh,kw]
        if flip:
            w = w[:, :, ::-1, ::-1]
        sd[f"{dst}.conv.weight"] = t(w)[None]
        sd[f"{dst}.conv.modulation.weight"] = t(take(f"{src}/mod_weight").T)
        sd[f"{dst}.conv.modulation.bias"] = t(take(f"{src}/mod_bias") + 1.0)  # TF adds the 1 at run time

    def conv(src, dst, flip=False):
        layer(src, dst, flip)
        sd[f"{dst}.noise.weight"] = t(take(f"{src}/noise_strength")).reshape(1)
        sd[f"{dst}.activate.bias"] = t(take(f"{src}/bias"))

    def torgb(src, dst):
        layer(src, dst)
        sd[f"{dst}.bias"] = t(take(f"{src}/bias")).reshape(1, -1, 1, 1)

    conv("synthesis/4x4/Conv", "conv1")
    torgb("synthesis/4x4/ToRGB", "to_rgb1")
    k = 3
    while f"synthesis/{2 ** k}x{2 ** k}/Conv0_up/weight" in tf:
        r = 2 ** k
        conv(f"synthesis/{r}x{r}/Conv0_up", f"convs.{2 * (k - 3)}", flip=True)
        conv(f"synthesis/{r}x{r}/Conv1", f"convs.{2 * (k - 3) + 1}")
        torgb(f"synthesis/{r}x{r}/ToRGB", f"to_rgbs.{k - 3}")
        k += 1
    for i in range(2 * (k - 1) - 3):
        sd[f"noises.noise_{i}"] = t(take(f"synthesis/noise{i}"))
    left = sorted(set(tf) - used)
    if left:
        raise ModelError(f"Gs has variables the StyleGAN2 layout cannot hold: {', '.join(left[:6])}"
                         + (" ..." if len(left) > 6 else ""))
    kwargs = gs.state.get("static_kwargs") or {}
    info = {"kind": "tensorflow-stylegan2", "network": "Gs", "lr_mlp": float(kwargs.get("mapping_lrmul", 0.01)),
            "conv_clamp": kwargs.get("conv_clamp")}
    return sd, latent_avg, info


def load_network_pickle(path) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, dict]:
    """``(g_ema state dict, latent_avg, info)`` of an NVIDIA ``.pkl`` of either kind."""
    obj = read_pickle(path)
    try:
        if isinstance(obj, tuple):
            return convert_tf(obj)
        return convert_ada(obj)
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None


def state_dict_for_manifest(path) -> Dict[str, torch.Tensor]:
    """The tensors a manifest source of format ``nvidia-pickle`` provides: the rosinality
    ``g_ema`` keys plus ``latent_avg``."""
    sd, latent_avg, info = load_network_pickle(path)
    if info.get("lr_mlp") not in (None, 0.01):
        log.warning("%s: mapping lr multiplier %s; set config.lr_mlp in the manifest to match", path, info["lr_mlp"])
    return dict(sd, latent_avg=latent_avg)

