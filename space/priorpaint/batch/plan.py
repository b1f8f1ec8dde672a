"""Planning a batch: which photos, their selections, their recipe hashes, what is done already.

* **Inputs** (:func:`collect_inputs`): image files; folders, searched recursively for image
  files (by suffix: :data:`IMAGE_SUFFIXES`), every other file skipped and listed; list
  files (suffix ``.txt`` / ``.lst`` / ``.list``: one path per line, relative to the list
  file, ``#`` comments).  The output folder is **excluded** from every folder search (and a
  listed photo inside it is skipped), so a rerun never edits its own results; an output
  folder that *is* an input folder is refused.  Outputs mirror the photos' paths relative
  to the folder they were found in (``shoot/day1/IMG_1.jpg`` -> ``OUT/day1/IMG_1.png``);
  a photo whose output an earlier photo already writes is reported, not run.
* **Selections** (:func:`read_boxes`): a JSON or CSV boxes file maps a photo (its path
  relative to its input folder, or its file name when that is unique) to a box
  ``X,Y,W,H`` or a mask image path (relative to the boxes file).  An entry naming no input
  photo, a malformed box and a photo with no entry are one line each; nothing is run for
  them.  Without a boxes file: detected faces, or the whole photo.
* **Resume**: each job's key hashes the recipe, the selection and the photo's bytes; a
  photo whose marker (beside its outputs) has the same key and whose files exist is done.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import InputError
from .photo import Outputs, PhotoJob, Recipe

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif")
LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass
class Plan:
    jobs: List[PhotoJob]
    skipped: List[Dict[str, str]] = field(default_factory=list)   # inputs that are not photos
    problems: List[str] = field(default_factory=list)             # boxes-file entries naming no photo
    excluded: Optional[str] = None                                 # the output folder, left out of the search


@dataclass
class _Found:
    path: Path
    name: str            # output name: relative path without suffix
    rel: str             # path relative to its input folder (or the file name)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _walk(folder: Path, out: Path, found: List[_Found], skipped: List[Dict[str, str]]) -> bool:
    """Image files under ``folder`` (sorted), the output folder pruned; True if it was pruned."""
    pruned = _inside(out, folder.resolve())
    for root, dirs, files in os.walk(folder):
        r = Path(root)
        keep = []
        for d in sorted(dirs):
            if (r / d).resolve() != out:
                keep.append(d)
        dirs[:] = keep
        for f in sorted(files):
            p = r / f
            rel = p.relative_to(folder)
            if p.suffix.lower() in IMAGE_SUFFIXES:
                found.append(_Found(p, rel.with_suffix("").as_posix(), rel.as_posix()))
            else:
                skipped.append({"path": str(p), "reason": "not an image file (by its suffix)"})
    return pruned


def collect_inputs(inputs: Sequence[str], outdir) -> Tuple[List[_Found], List[Dict[str, str]], bool]:
    """The photos named by ``inputs`` (files, folders, list files), the skipped files, and
    whether the output folder was excluded from a folder search."""
    if not inputs:
        raise InputError("no inputs: give photos, folders or a list file")
    out = Path(outdir).resolve()
    found: List[_Found] = []
    skipped: List[Dict[str, str]] = []
    pruned = False

    def add(arg: str, base: Optional[Path], from_list: bool) -> None:
        nonlocal pruned
        p = Path(arg).expanduser()
        if base is not None and not p.is_absolute():
            p = base / p
        if not p.exists():
            if from_list:
                found.append(_Found(p, p.stem, p.name))  # reported as a failed photo
                return
            raise InputError(f"input {arg} does not exist")
        if p.is_dir():
            if p.resolve() == out:
                raise InputError(f"the output folder {outdir} is the input folder {arg}; choose another output folder")
            pruned |= _walk(p, out, found, skipped)
        elif p.suffix.lower() in LIST_SUFFIXES and not from_list:
            try:
                lines = p.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise InputError(f"cannot read the list file {arg}: {e}") from None
            for line in lines:
                line = line.strip()
                if line and not line.startswith("#"):
                    add(line, p.parent, True)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            if _inside(p.resolve(), out):
                skipped.append({"path": str(p), "reason": "inside the output folder"})
            else:
                found.append(_Found(p, p.stem, p.name))
        else:
            skipped.append({"path": str(p), "reason": "not an image file (by its suffix)"})

    for arg in inputs:
        add(str(arg), None, False)
    return found, skipped, pruned


# -- boxes files ---------------------------------------------------------------------------

def _box_value(value, where: str, base: Path) -> dict:
    """``{"box": (x, y, w, h)}`` or ``{"mask": path}`` from a boxes-file value; InputError if malformed."""
    from ..compositing.crop import parse_box
    if isinstance(value, dict):
        if "mask" in value and value["mask"] not in (None, ""):
            return {"mask": str(base / str(value["mask"]))}
        if "box" in value:
            value = value["box"]
        elif all(k in value for k in ("x", "y", "w", "h")):
            value = [value[k] for k in ("x", "y", "w", "h")]
        else:
            raise InputError(f"{where}: give a box X,Y,W,H or a mask")
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise InputError(f"{where}: give a box X,Y,W,H or a mask, got {value!r}")
    try:
        box = parse_box(value)
    except InputError:
        raise InputError(f"{where}: the box must be X,Y,W,H (four integers), got {value!r}") from None
    if box[2] <= 0 or box[3] <= 0:
        raise InputError(f"{where}: the box {value} has no area (width and height must be positive)")
    return {"box": box}


def read_boxes(path) -> List[Tuple[str, object]]:
    """The entries of a boxes file, in order: ``(photo key, {"box"|"mask": ...})``, or
    ``(photo key, InputError)`` for a malformed entry.  A file that cannot be read at all
    is an :class:`InputError`."""
    path = Path(path)
    base = path.parent
    if not path.is_file():
        raise InputError(f"boxes file {path} does not exist")
    entries: List[Tuple[str, object]] = []

    def add(key, value, where):
        key = str(key).strip() if key is not None else ""
        if not key:
            entries.append(("", InputError(f"{where}: no photo name")))
            return
        try:
            entries.append((key, _box_value(value, f"{where} ({key})", base)))
        except InputError as e:
            entries.append((key, e))

    suffix = path.suffix.lower()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the boxes file {path}: {e}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"boxes file {path} is not valid JSON: {e}") from None
        if isinstance(data, dict):
            for key, value in data.items():
                add(key, value, f"boxes file {path.name}")
        elif isinstance(data, list):
            for i, item in enumerate(data, 1):
                if not isinstance(item, dict):
                    entries.append((f"#{i}", InputError(f"boxes file {path.name}, entry {i}: "
                                                        "must be an object with image and box or mask")))
                    continue
                add(item.get("image") or item.get("file"), item, f"boxes file {path.name}, entry {i}")
        else:
            raise InputError(f"boxes file {path} must hold an object (photo -> box) or a list of entries")
    elif suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        for i, row in enumerate(rows, 2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
            key = row.get("image") or row.get("file")
            if "image" not in row and "file" not in row:
                raise InputError(f"boxes file {path} needs a header with an image column and box, "
                                 "x,y,w,h or mask columns")
            value = {k: row[k] for k in ("box", "mask", "x", "y", "w", "h") if row.get(k)}
            add(key, value, f"boxes file {path.name}, line {i}")
    else:
        raise InputError(f"boxes file {path} must be .json or .csv")
    return entries


def _match_boxes(found: List[_Found], entries, boxes_name: str):
    """Per photo index: its selection dict or an error message; plus the problem lines."""
    by_rel: Dict[str, int] = {}
    by_file: Dict[str, List[int]] = {}
    by_path: Dict[str, int] = {}
    for i, f in enumerate(found):
        by_rel.setdefault(f.rel, i)
        by_file.setdefault(f.path.name, []).append(i)
        by_path.setdefault(str(f.path.resolve()), i)
    chosen: Dict[int, object] = {}
    problems: List[str] = []
    for key, value in entries:
        i = by_rel.get(key)
        if i is None and len(by_file.get(key, [])) == 1:
            i = by_file[key][0]
        if i is None:
            i = by_path.get(str(Path(key).expanduser().resolve())) if key else None
        if i is None:
            if isinstance(value, InputError):
                problems.append(str(value))
            else:
                problems.append(f"boxes file {boxes_name}: {key!r} names no input photo")
            continue
        if i in chosen:
            problems.append(f"boxes file {boxes_name}: {key!r} is given more than once; the first entry is used")
            continue
        chosen[i] = value
    return chosen, problems


# -- the plan ------------------------------------------------------------------------------

def file_sha256(path: Path) -> Optional[str]:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fp:
            for chunk in iter(lambda: fp.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def job_key(recipe: Recipe, job: PhotoJob) -> str:
    """The job's recipe hash: the recipe, the selection and the bytes of the photo (and mask)."""
    parts = {"recipe": recipe.digest(), "input": file_sha256(Path(job.source)),
             "box": list(job.box) if job.box else None, "faces": job.faces,
             "mask": file_sha256(Path(job.mask)) if job.mask else None}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def make_plan(inputs: Sequence[str], outputs: Outputs, recipe: Recipe, boxes: Optional[str] = None,
              faces: Optional[str] = None) -> Plan:
    """The batch's jobs, in input order; planning errors ride on the jobs (``job.error``)."""
    found, skipped, pruned = collect_inputs(inputs, outputs.folder)
    chosen: Dict[int, object] = {}
    problems: List[str] = []
    if boxes:
        chosen, problems = _match_boxes(found, read_boxes(boxes), Path(boxes).name)
    jobs: List[PhotoJob] = []
    owners: Dict[str, str] = {}
    for i, f in enumerate(found):
        job = PhotoJob(source=str(f.path), name=f.name, faces=faces)
        if boxes:
            sel = chosen.get(i)
            if sel is None:
                job.error = f"no entry for {f.rel} in the boxes file {Path(boxes).name}; nothing run"
            elif isinstance(sel, InputError):
                job.error = f"{sel}; nothing run"
            elif "mask" in sel:
                job.mask = sel["mask"]
            else:
                job.box = sel["box"]
        if not f.path.is_file() and not job.error:
            job.error = f"listed photo {f.path} does not exist"
        other = owners.get(job.name.lower())
        if other is not None and not job.error:
            job.error = f"its output {job.name}.png would also be the output of {other}; rename one of them"
        owners.setdefault(job.name.lower(), job.source)
        if not job.error:
            job.key = job_key(recipe, job)
        jobs.append(job)
    if not jobs:
        where = ", ".join(str(i) for i in inputs)
        listed = ", ".join(s["path"] for s in skipped[:10]) + (", ..." if len(skipped) > 10 else "")
        raise InputError(f"no photos to edit in {where} (photos are {', '.join(IMAGE_SUFFIXES)} files)"
                         + (f"; skipped {len(skipped)} other files: {listed}" if skipped else ""))
    return Plan(jobs=jobs, skipped=skipped, problems=problems,
                excluded=str(outputs.folder) if pruned else None)
