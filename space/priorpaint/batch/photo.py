"""The per-photo function: one photo, one recipe -> the written files and a report.

``priorpaint edit`` and ``priorpaint project`` call :func:`edit_photo`; ``priorpaint batch``
calls :func:`run_job` (which adds face detection, several selections per photo, the
resume marker and catches a photo's error so the others continue) in its local worker
processes and in its Ray actors alike.  Nothing here parses arguments: a worker needs the
:class:`Recipe` (plain, picklable values) and the paths, nothing else.

The pipeline is the session's: ``EditSession.open`` (load, crop) -> the specs parsed and
checked against the generator (a bad spec is refused before the slow projection) ->
``project`` -> ``apply`` -> ``render`` (through G′ when ``recipe.adapt``) -> save.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .. import __version__
from ..errors import InputError
from ..store import write_atomic

#: the report fields a batch summary keeps per photo
METRICS = ("psnr_z", "psnr_projection", "psnr_adapted", "psnr_unadapted", "edit_fidelity",
           "psnr_photo", "detail_kept", "changed_outside_mask")


@dataclass(frozen=True)
class Recipe:
    """What is done to every photo: the edits and the settings of projection and render."""

    edits: Tuple = ()                  # edit specs (CLI strings or dicts), applied in order
    model: Optional[str] = None        # manifest id (None: the default model)
    adapt: bool = True                 # render through G′
    adapt_method: str = "multiplicative"
    adapt_fit: str = "unedited"
    composite: str = "detail"          # "detail" (the photo's own detail kept) or "replace"
    steps: int = 300
    seed: int = 0
    init: str = "auto"                 # how projection starts: "auto", "encoder" (hybrid) or "search"
    margin: float = 0.1
    masked: bool = False
    allow_download: bool = False
    align: bool = True                 # align faces for a model that declares an alignment
    eyes: Optional[Tuple[float, float, float, float]] = None   # the eye centres (photo px), else detected

    def adapt_options(self) -> Optional[dict]:
        return {"method": self.adapt_method, "fit": self.adapt_fit} if self.adapt else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["edits"] = list(self.edits)
        return d

    def digest(self) -> str:
        """sha256 of everything that changes the pixels (and the priorpaint version)."""
        d = self.to_dict()
        d.pop("allow_download")
        if d["align"] and d["eyes"] is None:  # the defaults: digests of earlier recipes stay valid
            d.pop("align"), d.pop("eyes")
        d["version"] = __version__
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def check_recipe(recipe: Recipe, gen) -> List[dict]:
    """The recipe's parsed specs, checked against ``gen``; an :class:`InputError` for a bad one."""
    if recipe.steps < 0:
        raise InputError("--steps must be 0 or more")
    from ..compositing.crop import check_eyes_declared
    from ..models.registry import manifest_extra
    check_eyes_declared(manifest_extra(gen).get("alignment"), recipe.eyes, gen.model_id)
    if not recipe.edits:
        return []
    from ..edits.registry import check_specs, parse_specs
    specs = parse_specs(list(recipe.edits))
    check_specs(gen, specs)
    return specs


def render_selection(image, recipe: Recipe, box=None, mask=None, gen=None, t0: Optional[float] = None):
    """Open, project, edit and render one selection of ``image`` (a path, bytes or Photo).

    Returns ``(render, report)``; writes nothing."""
    from ..projection.project import ProjectionConfig
    from ..session import EditSession

    t0 = time.perf_counter() if t0 is None else t0
    if recipe.steps < 0:
        raise InputError("--steps must be 0 or more")
    session = EditSession.open(image, box=box, mask=mask, model=recipe.model, margin=recipe.margin,
                               allow_download=recipe.allow_download, gen=gen, align=recipe.align,
                               eyes=recipe.eyes)
    specs = check_recipe(recipe, session.gen) or None  # before the slow projection
    proj = session.project(ProjectionConfig(steps=recipe.steps, seed=recipe.seed, masked=recipe.masked,
                                            init=recipe.init))
    state = session.apply(specs) if specs else None
    result = session.render(state, adapt=recipe.adapt, adapt_options=recipe.adapt_options(),
                            composite=recipe.composite)
    seconds = dict(session.seconds)
    seconds["z_search"] = proj.seconds.get("z_search")
    seconds["refine"] = proj.seconds.get("refine")
    seconds["total"] = time.perf_counter() - t0
    report = {
        "model": session.model_id,
        "image": str(image) if isinstance(image, (str, os.PathLike)) else None,
        "image_mode": session.photo.mode,
        "box": list(session.crop.box),
        "square": list(session.crop.square),
        "psnr_z": proj.psnr_z,
        "psnr_projection": proj.psnr,
        "projection_init": proj.init,
        "encoder": proj.encoder,
        "psnr_encoder": proj.psnr_encoder,
        "perceptual_loss": proj.perceptual_used,
        "psnr_adapted": None,
        "edit_fidelity": None,
        **{k: v for k, v in result.metrics.items() if k not in ("model",)},
        "seconds": seconds,
        "layer_box": list(result.layer_box),
    }
    return result, report


def save_image_atomic(image, path) -> Path:
    """Write a :class:`~priorpaint.images.Photo` or an RGBA array as an image file, atomically
    (a temporary file beside it, then renamed): a crash never leaves half a file."""
    import numpy as np
    from PIL import Image

    path = Path(path)
    im = image.to_pil() if hasattr(image, "to_pil") else Image.fromarray(np.asarray(image), "RGBA")
    fmt = (path.suffix.lstrip(".") or "png").upper()
    fmt = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt, fmt)
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    try:
        return write_atomic(path, lambda tmp: im.save(tmp, format=fmt))
    except (KeyError, ValueError, OSError) as e:
        raise InputError(f"cannot write {path}: {e}") from None


def write_json_atomic(path, data) -> Path:
    text = json.dumps(data, indent=2, default=float)
    return write_atomic(Path(path), lambda tmp: Path(tmp).write_text(text))


def edit_photo(image, output, recipe: Recipe, box=None, mask=None, layer=None, report_path=None,
               gen=None) -> dict:
    """The pipeline of ``priorpaint edit`` for one selection: render it, write ``output``
    (alpha preserved), optionally the layer PNG and the report JSON; return the report."""
    t0 = time.perf_counter()
    result, report = render_selection(image, recipe, box=box, mask=mask, gen=gen, t0=t0)
    save_image_atomic(result.photo, output)
    if layer:
        save_image_atomic(result.layer, layer)
    report["output"] = str(output)
    if report_path:
        write_json_atomic(report_path, report)
    return report


# -- batch ---------------------------------------------------------------------------------

@dataclass
class PhotoJob:
    """One photo of a batch: where it is, its selection, where its results go."""

    source: str                        # the input photo's path
    name: str                          # output name relative to the output folder, no suffix ("sub/IMG_1")
    box: Optional[Tuple[int, int, int, int]] = None
    mask: Optional[str] = None         # a mask image path (same size as the photo)
    faces: Optional[str] = None        # "largest" / "all": select detected faces; None: box, mask or whole photo
    key: str = ""                      # the recipe hash of this photo's job (recipe, selection, input bytes)
    error: Optional[str] = None        # a planning error: the job is reported, not run
    extra: Dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Outputs:
    """The output folder and which optional files a batch writes."""

    folder: str
    layers: bool = False
    reports: bool = False

    def image(self, job: PhotoJob) -> Path:
        return Path(self.folder) / f"{job.name}.png"

    def layer(self, job: PhotoJob, index: int = 0) -> Path:
        return Path(self.folder) / (f"{job.name}.layer.png" if index == 0 else f"{job.name}.layer-{index + 1}.png")

    def report(self, job: PhotoJob) -> Path:
        return Path(self.folder) / f"{job.name}.report.json"

    def marker(self, job: PhotoJob) -> Path:
        """The resume marker beside the outputs: the job's recipe hash and its metrics."""
        p = Path(self.folder) / job.name
        return p.with_name(f".{p.name}.done.json")


def metrics_of(report: dict) -> dict:
    return {k: report.get(k) for k in METRICS}


def done_before(job: PhotoJob, outputs: Outputs) -> Optional[dict]:
    """The marker of a previous run of exactly this job when all its files are there, else None."""
    try:
        marker = json.loads(outputs.marker(job).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("key") != job.key:
        return None
    if not all(Path(outputs.folder, f).is_file() for f in marker.get("files", [])):
        return None
    return marker


def selections_for(job: PhotoJob, photo) -> List[dict]:
    """The selections of a job on its photo: the box or mask, the detected faces, or the whole photo."""
    if job.faces:
        from .faces import detect_faces
        boxes = detect_faces(photo.rgb)
        if not boxes:
            raise InputError("no face found (OpenCV's frontal-face detector); give a box for this photo")
        if job.faces != "all":
            boxes = boxes[:1]
        return [{"box": b} for b in boxes]
    if job.mask:
        return [{"mask": job.mask}]
    if job.box:
        return [{"box": tuple(job.box)}]
    w, h = photo.size
    return [{"box": (0, 0, w, h)}]


def run_job(job: PhotoJob, recipe: Recipe, outputs: Outputs, gen=None) -> dict:
    """Edit one photo of a batch and write its files; never raises for the photo's own errors.

    Every selection (a face, the box, the mask) is edited in turn on the result of the
    previous one; one ``NAME.png`` is written.  Returns the summary row: ``status``
    (``"ok"`` / ``"failed"``), ``error`` (one line), ``seconds``, ``metrics``, ``output``."""
    from ..images import load_photo

    t0 = time.perf_counter()
    row = {"input": job.source, "name": job.name, "status": "failed", "error": None, "seconds": 0.0}
    if job.error:
        row["error"] = job.error
        return row
    try:
        photo = load_photo(job.source, f"photo {Path(job.source).name}")
        reports = []
        current = photo
        for i, sel in enumerate(selections_for(job, photo)):
            result, report = render_selection(current, recipe, box=sel.get("box"), mask=sel.get("mask"), gen=gen)
            report["image"] = job.source
            current = result.photo
            if outputs.layers:
                save_image_atomic(result.layer, outputs.layer(job, i))
            reports.append(report)
        out = outputs.image(job)
        save_image_atomic(current, out)
        report = dict(reports[0]) if len(reports) == 1 else {"image": job.source, "faces": reports}
        report["output"] = str(out)
        files = [out]
        if outputs.layers:
            files += [outputs.layer(job, i) for i in range(len(reports))]
        if outputs.reports:
            write_json_atomic(outputs.report(job), report)
            files.append(outputs.report(job))
        row.update(status="ok", output=str(out), selections=len(reports),
                   metrics=metrics_of(reports[0]) if len(reports) == 1 else [metrics_of(r) for r in reports])
        row["seconds"] = time.perf_counter() - t0
        marker = {"key": job.key, "input": job.source, "seconds": row["seconds"], "metrics": row["metrics"],
                  "selections": row["selections"],
                  "files": [str(Path(f).relative_to(outputs.folder)) for f in files]}
        write_json_atomic(outputs.marker(job), marker)  # written last: the job is done
    except Exception as e:  # a photo's error never stops the batch; it is reported in one line
        row["error"] = one_line(e)
        row["seconds"] = time.perf_counter() - t0
    return row


def one_line(e: BaseException) -> str:
    from ..errors import PriorpaintError
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, PriorpaintError):
        return text or type(e).__name__
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# -- a worker: one generator per process or actor -------------------------------------------

class Worker:
    """What one worker holds: the generator (loaded once), the checked recipe, the outputs."""

    def __init__(self, recipe: Recipe, outputs: Outputs, threads: Optional[int] = None, device=None):
        import torch

        from ..models.registry import load_generator
        if threads:
            torch.set_num_threads(int(threads))
        self.recipe, self.outputs = recipe, outputs
        self.gen = load_generator(recipe.model, device=device, allow_download=recipe.allow_download)
        check_recipe(recipe, self.gen)

    def run(self, job: PhotoJob) -> dict:
        row = run_job(job, self.recipe, self.outputs, gen=self.gen)
        row["worker"] = os.getpid()
        return row


__all__ = ["Recipe", "PhotoJob", "Outputs", "Worker", "check_recipe", "render_selection", "edit_photo",
           "run_job", "done_before", "save_image_atomic", "write_json_atomic", "one_line", "METRICS"]
