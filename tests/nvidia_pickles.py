"""Writers of NVIDIA-shaped network pickles for the tests, with the standard ``pickle`` module.

No NVIDIA code: stand-in classes whose global names (``torch_utils.persistence.
_reconstruct_persistent_obj``, ``dnnlib.util.EasyDict``, ``dnnlib.tflib.network.Network``)
and reduce / state match the streams described in shared/notes/nvidia-pickles.md.  The
networks are a rosinality ``g_ema`` state dict turned into NVIDIA's layout by inverting the
mapping tables of those notes (section 3 for PyTorch, section 4 for TF).  The stand-ins
exist in ``sys.modules`` only while a stream is written.
"""

from __future__ import annotations

import collections
import math
import pickle
import sys
import types
from contextlib import contextmanager

import numpy as np
import torch


def _persistent_stub(meta):  # pragma: no cover - a name for the pickler, never called
    raise AssertionError("stand-in: never called")


_persistent_stub.__module__ = "torch_utils.persistence"
_persistent_stub.__name__ = _persistent_stub.__qualname__ = "_reconstruct_persistent_obj"


class EasyDict(dict):
    pass


EasyDict.__module__ = "dnnlib.util"


class Network:
    """The TF network stand-in: ``__getstate__`` gives the dict that NVIDIA's writes."""

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state


Network.__module__ = "dnnlib.tflib.network"


class Persisted:
    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return (_persistent_stub, (self.meta,))


class Reduce:
    """An object whose pickle is ``fn(*args)``: how a malicious stream calls code."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@contextmanager
def stand_ins():
    mods = {"torch_utils": types.ModuleType("torch_utils"),
            "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
            "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": types.ModuleType("dnnlib.util"),
            "dnnlib.tflib": types.ModuleType("dnnlib.tflib"),
            "dnnlib.tflib.network": types.ModuleType("dnnlib.tflib.network")}
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _persistent_stub
    mods["dnnlib.util"].EasyDict = EasyDict
    mods["dnnlib.tflib.network"].Network = Network
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def dump(obj, path, protocol=4):
    with stand_ins():
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)


def evil_source(marker) -> str:
    """Module source that writes ``marker`` when executed."""
    return f"open({str(marker)!r}, 'w').write('embedded code ran')\nclass Generator: pass\n"


# -- stylegan2-ada-pytorch ------------------------------------------------------------------
FIR = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64


def _module(src, class_name, params=None, buffers=None, modules=None, **attrs):
    state = {"training": False,
             "_parameters": {k: torch.nn.Parameter(v.clone(), requires_grad=False) for k, v in (params or {}).items()},
             "_buffers": {k: v.clone() for k, v in (buffers or {}).items()},
             "_non_persistent_buffers_set": set(),
             "_backward_pre_hooks": collections.OrderedDict(), "_backward_hooks": collections.OrderedDict(),
             "_forward_hooks": collections.OrderedDict(), "_forward_pre_hooks": collections.OrderedDict(),
             "_state_dict_hooks": collections.OrderedDict(), "_load_state_dict_pre_hooks": collections.OrderedDict(),
             "_modules": dict(modules or {}), **attrs}
    return Persisted({"type": "class", "version": 6, "module_src": src, "class_name": class_name, "state": state})


def _fc(src, weight, bias, activation, lr):
    return _module(src, "FullyConnectedLayer", {"weight": weight, "bias": bias}, activation=activation,
                   in_features=weight.shape[1], out_features=weight.shape[0],
                   weight_gain=np.float64(lr / math.sqrt(weight.shape[1])), bias_gain=lr)


def _synthesis_layer(src, sd, key, noise, resolution, up):
    p = {"weight": sd[f"{key}.conv.weight"][0], "noise_strength": sd[f"{key}.noise.weight"].reshape(()),
         "bias": sd[f"{key}.activate.bias"]}
    b = {"resample_filter": FIR, "noise_const": sd[f"noises.noise_{noise}"][0, 0]}
    aff = _fc(src, sd[f"{key}.conv.modulation.weight"], sd[f"{key}.conv.modulation.bias"], "linear", 1)
    return _module(src, "SynthesisLayer", p, b, {"affine": aff}, resolution=resolution, up=up, use_noise=True,
                   activation="lrelu", conv_clamp=256, padding=1, act_gain=np.float64(math.sqrt(2)))


def _torgb(src, sd, key):
    p = {"weight": sd[f"{key}.conv.weight"][0], "bias": sd[f"{key}.bias"].reshape(-1)}
    aff = _fc(src, sd[f"{key}.conv.modulation.weight"], sd[f"{key}.conv.modulation.bias"], "linear", 1)
    cin = p["weight"].shape[1]
    return _module(src, "ToRGBLayer", p, None, {"affine": aff}, conv_clamp=256,
                   weight_gain=np.float64(1 / math.sqrt(cin)))


def ada_generator(sd, latent_avg, src="", lr_mlp=0.01, architecture="skip", c_dim=0, extra_params=None):
    """A persisted ``Generator`` (G_ema layout) holding the rosinality state dict ``sd``."""
    style_dim = sd["style.1.weight"].shape[1]
    n_mlp = sum(1 for k in sd if k.startswith("style.") and k.endswith(".weight"))
    convs = sum(1 for k in sd if k.startswith("convs.") and k.endswith(".conv.weight"))
    log2 = convs // 2 + 2
    R = 2 ** log2
    fcs = {f"fc{i}": _fc(src, sd[f"style.{i + 1}.weight"], sd[f"style.{i + 1}.bias"], "lrelu", lr_mlp)
           for i in range(n_mlp)}
    mapping = _module(src, "MappingNetwork", None, {"w_avg": latent_avg}, fcs, z_dim=style_dim, c_dim=c_dim,
                      w_dim=style_dim, num_ws=2 * log2 - 2, num_layers=n_mlp, w_avg_beta=0.995)
    blocks = {"b4": _module(src, "SynthesisBlock", {"const": sd["input.input"][0]}, {"resample_filter": FIR},
                            {"conv1": _synthesis_layer(src, sd, "conv1", 0, 4, 1),
                             "torgb": _torgb(src, sd, "to_rgb1")},
                            in_channels=0, resolution=4, is_last=R == 4, architecture=architecture, use_fp16=False,
                            num_conv=1, num_torgb=1)}
    for k in range(3, log2 + 1):
        r = 2 ** k
        blocks[f"b{r}"] = _module(
            src, "SynthesisBlock", dict(extra_params or {}) if k == 3 else None, {"resample_filter": FIR},
            {"conv0": _synthesis_layer(src, sd, f"convs.{2 * (k - 3)}", 2 * k - 5, r, 2),
             "conv1": _synthesis_layer(src, sd, f"convs.{2 * (k - 3) + 1}", 2 * k - 4, r, 1),
             "torgb": _torgb(src, sd, f"to_rgbs.{k - 3}")},
            in_channels=sd[f"convs.{2 * (k - 3)}.conv.weight"].shape[2], resolution=r, is_last=r == R,
            architecture=architecture, use_fp16=r >= R // 4, num_conv=2, num_torgb=1)
    synthesis = _module(src, "SynthesisNetwork", None, None, blocks, w_dim=style_dim, img_resolution=R,
                        img_channels=3, num_ws=2 * log2 - 2)
    init_kwargs = EasyDict(z_dim=style_dim, w_dim=style_dim, mapping_kwargs=EasyDict(num_layers=n_mlp),
                           synthesis_kwargs=EasyDict(channel_base=16384, channel_max=512, num_fp16_res=4,
                                                     conv_clamp=256, architecture=architecture),
                           c_dim=c_dim, img_resolution=R, img_channels=3)
    return _module(src, "Generator", None, None, {"synthesis": synthesis, "mapping": mapping},
                   z_dim=style_dim, c_dim=c_dim, w_dim=style_dim, img_resolution=R, img_channels=3,
                   num_ws=2 * log2 - 2, _init_args=(), _init_kwargs=init_kwargs)


def ada_snapshot(g_ema, g_train, src=""):
    d = _module(src, "Discriminator", None, None,
                {"b4": _module(src, "DiscriminatorEpilogue", {"fc": torch.zeros(4, 4)})})
    return {"training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "x.zip",
                                    "use_labels": False, "max_size": 10, "xflip": False, "resolution": 64},
            "G": g_train, "D": d, "G_ema": g_ema, "augment_pipe": None}


# -- TensorFlow StyleGAN2 -------------------------------------------------------------------
def _np(t):
    return t.detach().numpy().astype(np.float32)


def tf_variables(sd, latent_avg):
    """(own, mapping, synthesis) variable lists of ``Gs`` for the rosinality ``sd``."""
    n_mlp = sum(1 for k in sd if k.startswith("style.") and k.endswith(".weight"))
    convs = sum(1 for k in sd if k.startswith("convs.") and k.endswith(".conv.weight"))
    log2 = convs // 2 + 2
    mapping = []
    for i in range(n_mlp):
        mapping += [(f"Dense{i}/weight", _np(sd[f"style.{i + 1}.weight"]).T.copy()),
                    (f"Dense{i}/bias", _np(sd[f"style.{i + 1}.bias"]))]
    syn = [(f"noise{i}", _np(sd[f"noises.noise_{i}"])) for i in range(2 * log2 - 3)]
    syn.append(("4x4/Const/const", _np(sd["input.input"])))

    def layer(tf, key, flip=False, rgb=False):
        w = _np(sd[f"{key}.conv.weight"][0])  # [O,I,kh,kw]
        if flip:
            w = w[:, :, ::-1, ::-1]
        out = [(f"{tf}/weight", np.ascontiguousarray(w.transpose(2, 3, 1, 0))),  # -> [kh,kw,I,O]
               (f"{tf}/mod_weight", _np(sd[f"{key}.conv.modulation.weight"]).T.copy()),
               (f"{tf}/mod_bias", _np(sd[f"{key}.conv.modulation.bias"]) - 1.0)]
        if rgb:
            out.append((f"{tf}/bias", _np(sd[f"{key}.bias"]).reshape(-1)))
        else:
            out += [(f"{tf}/noise_strength", np.float32(sd[f"{key}.noise.weight"].item())),
                    (f"{tf}/bias", _np(sd[f"{key}.activate.bias"]))]
        return out

    syn += layer("4x4/Conv", "conv1") + layer("4x4/ToRGB", "to_rgb1", rgb=True)
    for k in range(3, log2 + 1):
        r = f"{2 ** k}x{2 ** k}"
        syn += layer(f"{r}/Conv0_up", f"convs.{2 * (k - 3)}", flip=True)
        syn += layer(f"{r}/Conv1", f"convs.{2 * (k - 3) + 1}")
        syn += layer(f"{r}/ToRGB", f"to_rgbs.{k - 3}", rgb=True)
    own = [("dlatent_avg", _np(latent_avg)), ("lod", np.float32(0.0))]
    return own, mapping, syn


def tf_network(name, func, variables, src, components=None, **static):
    return Network({"version": 4, "name": name, "static_kwargs": dict(static), "components": components or {},
                    "build_module_src": src, "build_func_name": func, "variables": list(variables)})


def tf_pickle_tuple(sd, latent_avg, src="", extra_synthesis=()):
    """``(G, D, Gs)`` with ``Gs`` holding ``sd``; G holds other (training) values."""
    R = 2 ** (sum(1 for k in sd if k.startswith("convs.") and k.endswith(".conv.weight")) // 2 + 2)

    def gen(name, sd_, la):
        own, mapping, syn = tf_variables(sd_, la)
        comps = {"synthesis": tf_network("G_synthesis", "G_synthesis_stylegan2", syn + list(extra_synthesis), src,
                                         num_channels=3, resolution=R),
                 "mapping": tf_network("G_mapping", "G_mapping", mapping, src, dlatent_broadcast=2 * int(
                     math.log2(R)) - 2)}
        return tf_network(name, "G_main", own, src, comps, num_channels=3, resolution=R, label_size=0)

    other = {k: v + 0.5 for k, v in sd.items()}
    D = tf_network("D", "D_stylegan2", [("Output/weight", np.zeros((4, 1), np.float32))], src,
                   num_channels=3, resolution=R, label_size=0)
    return (gen("G", other, latent_avg + 1), D, gen("Gs", sd, latent_avg))
