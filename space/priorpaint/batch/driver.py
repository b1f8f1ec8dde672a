"""The batch driver: plan, skip what is done, run the rest locally or on Ray, summarise.

Exit codes (:func:`run_batch` returns them; ``priorpaint batch`` exits with them):

* ``0`` — every photo was edited (now, or by an earlier run of the same recipe);
* ``1`` — some photos failed or were not run (their one-line errors are printed and in the
  summary), or a boxes-file entry names no input photo; the others were written;
* ``2`` — a usage error: bad options or edit specs, no photos among the inputs, an output
  folder that is an input folder, a Ray address that does not answer (nothing was run);
* ``130`` — interrupted (Ctrl-C); a rerun resumes where it stopped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .. import __version__
from .photo import Outputs, Recipe, check_recipe, done_before, run_job, write_json_atomic
from .plan import make_plan

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class BatchOptions:
    inputs: Sequence[str]
    output: str
    recipe: Recipe
    boxes: Optional[str] = None
    faces: Optional[str] = None          # None, "largest" or "all"
    workers: Optional[int] = None        # None: from the cores and memory (local) or the cluster (Ray)
    threads: Optional[int] = None        # torch threads per worker
    ray: Optional[str] = None            # None (local processes), "auto", "local" or an address
    ray_timeout: float = 15.0
    layers: bool = False
    reports: bool = False
    summary: Optional[str] = None        # default OUTPUT/summary.json
    progress: bool = True


def _totals(rows: List[dict], wall: float) -> Dict[str, object]:
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] == "failed"]
    done = [r for r in rows if r["status"] == "done"]
    return {"photos": len(rows), "ok": len(ok), "done_before": len(done), "failed": len(failed),
            "seconds": round(wall, 3),
            "seconds_per_photo": round(sum(r["seconds"] for r in ok) / len(ok), 3) if ok else None,
            "photos_per_minute": round(len(ok) / wall * 60.0, 2) if ok and wall > 0 else None}


def run_batch(opts: BatchOptions, log=None) -> tuple:
    """Run a batch; ``(exit code, summary dict)``.  Usage errors raise :class:`InputError`."""
    from ..models.registry import load_generator
    log = log or sys.stderr
    t0 = time.perf_counter()
    recipe = opts.recipe
    outputs = Outputs(folder=str(Path(opts.output).expanduser().resolve()), layers=opts.layers,
                      reports=opts.reports)
    # the recipe is checked once, before anything runs (a bad spec is a usage error)
    check_recipe(recipe, load_generator(recipe.model, device="cpu", allow_download=recipe.allow_download))
    plan = make_plan(opts.inputs, outputs, recipe, boxes=opts.boxes, faces=opts.faces)
    ray_started = False
    if opts.ray:  # join (or start) Ray before anything runs: a bad address is a usage error
        from .ray_runner import connect
        from .local import cpu_count
        ray_started = connect(opts.ray, opts.workers or cpu_count(), opts.ray_timeout)
    for s in plan.skipped:
        print(f"skipped {s['path']}: {s['reason']}", file=log)
    if plan.excluded:
        print(f"note: the output folder {plan.excluded} lies inside an input folder; it is left out", file=log)
    for p in plan.problems:
        print(f"problem: {p}", file=log)

    order = {id(j): i for i, j in enumerate(plan.jobs)}
    rows: Dict[int, dict] = {}
    todo = []
    for job in plan.jobs:
        if job.error:
            rows[order[id(job)]] = run_job(job, recipe, outputs)
            continue
        marker = done_before(job, outputs)
        if marker is not None:
            rows[order[id(job)]] = {"input": job.source, "name": job.name, "status": "done",
                                    "error": None, "seconds": marker.get("seconds", 0.0),
                                    "output": str(outputs.image(job)), "metrics": marker.get("metrics"),
                                    "selections": marker.get("selections")}
        else:
            todo.append(job)
    for r in rows.values():
        if r["status"] == "failed":
            print(f"failed {r['input']}: {r['error']}", file=log)

    summary_path = Path(opts.summary) if opts.summary else Path(outputs.folder) / "summary.json"
    summary: Dict[str, object] = {
        "version": __version__, "recipe": recipe.to_dict(), "recipe_hash": recipe.digest(),
        "inputs": [str(i) for i in opts.inputs], "output_folder": outputs.folder,
        "selection": "boxes file" if opts.boxes else (f"faces ({opts.faces})" if opts.faces else "whole photo"),
        "runner": f"ray ({opts.ray})" if opts.ray else "local", "workers": None, "threads": opts.threads,
        "skipped": plan.skipped, "boxes_problems": plan.problems, "excluded": plan.excluded,
    }
    by_name = {j.name: order[id(j)] for j in todo}
    status = "complete"
    try:
        if todo:
            from tqdm import tqdm
            if opts.ray:
                from .ray_runner import run_ray
                results = run_ray(todo, recipe, outputs, workers=opts.workers, threads=opts.threads)
                summary["workers"] = opts.workers or "one per cluster GPU (or CPU)"
            else:
                from .local import default_workers, run_local, threads_per_worker
                import torch
                workers = opts.workers or default_workers(len(todo), on_gpu=torch.cuda.is_available())
                workers = max(1, min(workers, len(todo)))
                summary["workers"] = workers
                summary["threads"] = opts.threads or threads_per_worker(workers)
                results = run_local(todo, recipe, outputs, workers, threads=opts.threads)
            with tqdm(total=len(todo), unit="photo", desc="batch", file=log, disable=not opts.progress,
                      dynamic_ncols=True) as bar:
                for row in results:
                    rows[by_name[row["name"]]] = row
                    if row["status"] != "ok":
                        bar.write(f"failed {row['input']}: {row['error']}", file=log)
                    bar.update(1)
                    bar.set_postfix(failed=sum(r["status"] == "failed" for r in rows.values()), refresh=False)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        ordered = [rows[i] for i in sorted(rows)]
        for job in todo:  # not reached (interrupted)
            if order[id(job)] not in rows:
                ordered.append({"input": job.source, "name": job.name, "status": "not run",
                                "error": "interrupted", "seconds": 0.0})
        summary["status"] = status
        summary["photos"] = ordered
        summary["totals"] = _totals(ordered, time.perf_counter() - t0)
        summary["exit_code"] = (EXIT_INTERRUPTED if status == "interrupted" else
                                EXIT_OK if summary["totals"]["failed"] == 0 and not plan.problems else EXIT_FAILED)
        write_json_atomic(summary_path, summary)
        if ray_started:
            import ray
            ray.shutdown()
    t = summary["totals"]
    rate = f", {t['photos_per_minute']} photos/min" if t["photos_per_minute"] else ""
    print(f"batch: {t['photos']} photos: {t['ok']} written, {t['done_before']} done before, "
          f"{t['failed']} failed{rate}; summary {summary_path}", file=log)
    return summary["exit_code"], summary
