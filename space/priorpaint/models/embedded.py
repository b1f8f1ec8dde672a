"""The embedded default model's weights ship inside the package: how that file was made.

The default model (``dcgan-digiface-64``) is the generator of the PyPI package
``gan-face-generate==1.1.1`` (MIT), published there as a torch pickle (``weights.tar``, its
``netG_state_dict`` entry).  priorpaint ships those tensors converted once to safetensors, with
the package's licence text beside them, so that ``pip install priorpaint`` works with no
checkout, no network and no torch pickle to unpickle.  The conversion is re-runnable and
deterministic (the same source gives the same bytes and sha256)::

    pip install --no-deps gan-face-generate==1.1.1
    python -m priorpaint.models.embedded            # rewrite the shipped files in place
    python -m priorpaint.models.embedded --check    # convert into a temporary folder, compare

The source file is verified against its sha256 before it is read, and read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import tempfile
from pathlib import Path
from typing import Dict

import torch

from ..errors import ModelError
from .manifest import DEFAULT_MODEL, Source, packaged_dir
from .weights import read_state_dict, sha256_file, verify

#: where the shipped tensors came from (also recorded in the manifest entry and the file's metadata)
PROVENANCE = {
    "package": "gan-face-generate",
    "version": "1.1.1",
    "path": "gan_face_generate/weights.tar",
    "sha256": "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f",
    "state_dict_key": "netG_state_dict",
    "license": "MIT",
    "homepage": "https://github.com/chien-liu/DCGAN-PyTorch",
}
WEIGHTS_NAME = f"models/{DEFAULT_MODEL}.safetensors"
LICENSE_NAME = f"models/{DEFAULT_MODEL}.LICENSE.txt"


def _source_file() -> Path:
    src = Source(type="package", package=PROVENANCE["package"], version=PROVENANCE["version"],
                 path=PROVENANCE["path"])
    try:
        dist = importlib.metadata.distribution(src.package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the conversion reads {src.describe()}: install it first with "
                         f"`pip install --no-deps {src.package}=={src.version}`") from None
    if dist.version != src.version:
        raise ModelError(f"{src.package} is version {dist.version} here; the conversion needs {src.version}")
    path = Path(dist.locate_file(src.path))
    if not path.is_file():
        raise ModelError(f"{src.describe()} has no file {path}")
    return path


def _license_text() -> str:
    dist = importlib.metadata.distribution(PROVENANCE["package"])
    for f in dist.files or []:
        if Path(str(f)).name.upper().startswith("LICENSE"):
            return Path(dist.locate_file(f)).read_text()
    raise ModelError(f"{PROVENANCE['package']} carries no licence file")


def convert(out_dir: Path) -> Dict[str, object]:
    """Write ``models/<default>.safetensors`` and its licence under ``out_dir``; returns the
    manifest source of the written file (path relative to ``out_dir``, sha256, size)."""
    src_path = _source_file()
    source = Source(type="package", package=PROVENANCE["package"], version=PROVENANCE["version"],
                    path=PROVENANCE["path"], sha256=PROVENANCE["sha256"], format="torch",
                    state_dict_key=PROVENANCE["state_dict_key"])
    verify(src_path, source.sha256, source.describe())
    state = read_state_dict(src_path, source)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in sorted(state.items())}
    # one metadata key: safetensors writes its metadata map in no fixed order, and the bytes must
    # not depend on that
    meta = {"provenance": json.dumps(dict(PROVENANCE, model=DEFAULT_MODEL), sort_keys=True)}
    out_dir = Path(out_dir)
    weights, licence = out_dir / WEIGHTS_NAME, out_dir / LICENSE_NAME
    weights.parent.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file
    save_file(tensors, str(weights), metadata=meta)
    weights.chmod(0o644)
    licence.write_text(f"The weights in {weights.name} are the netG_state_dict tensors of "
                       f"{PROVENANCE['path']} in the PyPI package {PROVENANCE['package']} "
                       f"{PROVENANCE['version']} ({PROVENANCE['homepage']}), converted to safetensors "
                       f"unchanged by `python -m priorpaint.models.embedded`. Their licence:\n\n"
                       + _license_text())
    return {"type": "file", "path": WEIGHTS_NAME, "sha256": sha256_file(weights),
            "size": weights.stat().st_size, "format": "safetensors"}


def check() -> str:
    """Convert into a temporary folder; '' when the result matches the shipped file byte for
    byte, else why not."""
    shipped = packaged_dir() / WEIGHTS_NAME
    entry = json.loads((packaged_dir() / f"{DEFAULT_MODEL}.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        got = convert(Path(tmp))
        if got["sha256"] != entry["sources"][0]["sha256"]:
            return f"converted sha256 {got['sha256']} differs from the manifest's {entry['sources'][0]['sha256']}"
        if not shipped.is_file() or sha256_file(shipped) != got["sha256"]:
            return f"the shipped file {shipped} differs from the conversion"
    return ""


USAGE = "usage: python -m priorpaint.models.embedded [--check | --out DIR]"


def main(argv=None) -> int:
    """``--check``: convert into a temporary folder and compare with the shipped file;
    ``--out DIR``: write ``models/`` under DIR; nothing: rewrite the shipped files in place."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv not in ([], ["--check"]) and not (len(argv) == 2 and argv[0] == "--out"):
        print(USAGE, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    try:
        if argv == ["--check"]:
            why = check()
            print(why or "the shipped weights are reproduced byte for byte")
            return 1 if why else 0
        print(json.dumps(convert(Path(argv[1]) if argv else packaged_dir()), indent=2))
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
