"""A protocol-faithful stand-in for the backend, for the GIMP and bridge tests.

It speaks the plain-HTTP Gradio protocol of docs/api.md (upload, call, SSE, files) with
simple deterministic image maths, so the plug-in's GIMP-side code for *Segment selection*,
*Apply segmentation edit* and *Paint concept* (label layers, parasites, placement), the
dialog's preview (both forms of ``preview``), long fits that only ``cancel`` stops
(``project_delay``), and the model listing and ``download`` (byte progress; an offline
model's one-line error) is exercised in the real GIMP quickly and deterministically. It
records every call (and every cancelled id) so the test can check what the plug-in sent.
"""

from __future__ import annotations

import io
import json
import secrets
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

from gimp_bridge import ops

LEGEND = {"background": [0, 0, 255], "face": [255, 0, 0]}


def _multipart_file(body: bytes, ctype: str) -> bytes:
    boundary = ctype.split("boundary=", 1)[1].strip().encode()
    part = body.split(b"--" + boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]


class QuietHandler(BaseHTTPRequestHandler):
    """A keep-alive request handler that logs nothing and answers with ``_send``."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeKindsBackend:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pp-fake-"))
        self.files = {}
        self.sessions = {}
        self.calls = []
        self.preview_model_only = False      # True: an older backend, whose preview takes only a list
        self.project_delay = 0.0             # seconds a projection takes (0: at once)
        self.drag_steps = 12                 # a drag edit streams this many steps of live handle positions
        self.drag_step_s = 0.15              # seconds apart
        self.psnr = None                     # the projection's PSNR (dB) that `project` reports, if any
        self.cancelled = []                  # ids sent to `cancel`
        self.disconnected = []               # endpoints whose stream the client closed early
        self.models = [
            {"id": "dcgan-digiface-64", "kind": "generator", "architecture": "dcgan", "resolution": 64,
             "domain": "faces", "present": True, "downloadable": False, "default": True, "description": "embedded"},
            {"id": "dcgan-digiface-64-encoder", "kind": "encoder", "architecture": "conv-encoder", "resolution": 64,
             "domain": "", "present": True, "downloadable": False, "default": False, "description": "encoder"},
            {"id": "stylegan2-ffhq-256", "kind": "generator", "architecture": "stylegan2", "resolution": 256,
             "domain": "faces", "present": False, "downloadable": True, "default": False, "aligned": True,
             "description": "FFHQ faces", "download_bytes": 95_000_000},
            {"id": "stylegan2-car-512", "kind": "generator", "architecture": "stylegan2", "resolution": 512,
             "domain": "cars", "present": False, "downloadable": True, "default": False, "description": "LSUN cars"},
            {"id": "stylegan2-ffhq-256-tf", "kind": "generator", "architecture": "stylegan2", "resolution": 256,
             "domain": "faces", "present": False, "downloadable": True, "default": False, "aligned": True,
             "description": "FFHQ faces, NVIDIA's pickle"}]
        self.offline = {"stylegan2-car-512": "aaronb/StyleGAN2"}   # these cannot be fetched
        # what /gradio_api/info answers: today's backend, whose edit takes the composite mode
        # (None: 404, like an older backend that declares nothing and takes four inputs)
        self.info = {"named_endpoints": {"/edit": {"parameters": [
            {"parameter_name": n} for n in ("session", "edits", "adapt", "files", "composite")]},
            "/verdict": {"parameters": [{"parameter_name": n} for n in ("session", "edits", "options")]}}}
        fake = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/gradio_api/upload":
                    path = str(fake.dir / f"up{len(fake.files)}.png")
                    fake.files[path] = _multipart_file(body, self.headers["Content-Type"])
                    return self._send(200, json.dumps([path]).encode())
                api = self.path.rsplit("/", 1)[1]
                data = json.loads(body)["data"]
                fake.calls.append((api, data))
                self.server.pending[f"ev{len(fake.calls)}"] = (api, data)
                self._send(200, json.dumps({"event_id": f"ev{len(fake.calls)}"}).encode())

            def do_GET(self):
                if self.path == "/gradio_api/info":
                    if fake.info is None:
                        return self._send(404, b'{"detail": "Not Found"}')
                    return self._send(200, json.dumps(fake.info).encode())
                if self.path.startswith("/gradio_api/file="):
                    blob = fake.files.get(self.path.split("=", 1)[1])
                    return self._send(200, blob, "image/png") if blob else self._send(404, b"{}")
                api, event = self.path.split("/")[3:5]
                _, data = self.server.pending.pop(event)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for kind, payload in fake.stream(api, data):
                        self.wfile.write(f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode())
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):   # the client went away
                    fake.disconnected.append(api)
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.pending = {}
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- what the endpoints compute ---------------------------------------------------------
    def _img(self, ref) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.files[ref["path"]])))

    def _file(self, arr: np.ndarray) -> dict:
        path = str(self.dir / f"out{len(self.files)}.png")
        b = io.BytesIO()
        Image.fromarray(arr).save(b, "PNG")
        self.files[path] = b.getvalue()
        return {"path": path, "url": f"/gradio_api/file={path}", "meta": {"_type": "gradio.FileData"}}

    def stream(self, api: str, data: list):
        """The SSE events of one call: ``(event, data)`` pairs."""
        job = f"j-{api}-{len(self.calls)}"
        status = {"done": False, "stage": api, "fraction": 0.5, "job": job}
        try:
            if api == "download":
                yield from self._download(data[0])
                return
            if api == "project" and self.project_delay:   # a long fit; only `cancel` stops it early
                t0 = time.monotonic()
                while time.monotonic() - t0 < self.project_delay and job not in self.cancelled:
                    status["fraction"] = (time.monotonic() - t0) / self.project_delay
                    yield "generating", [json.dumps(status)]
                    time.sleep(0.2)
                if job in self.cancelled:
                    yield "error", "job cancelled by the client"
                    return
            if api == "edit":
                yield from self._drag_steps(job, data)
                if job in self.cancelled:
                    yield "error", "job cancelled by the client"
                    return
            outputs = self.handle(api, data)
            yield "generating", [json.dumps(status)]
            yield "complete", outputs
        except Exception as e:  # reported like the real app's user errors
            yield "error", str(e)

    def _drag_steps(self, job: str, data: list):
        """A drag's live reports as the real backend streams them: each step's handle positions and
        targets (the crop's pixels), the handles moving straight toward their targets over
        :attr:`drag_steps` steps :attr:`drag_step_s` seconds apart; a cancel ends them."""
        try:
            specs = json.loads(data[1])
        except (TypeError, ValueError, IndexError):
            return
        drag = next((s for s in specs if isinstance(s, dict) and s.get("kind") == "drag"), None) \
            if isinstance(specs, list) else None
        if drag is None:
            return
        pts = drag["points"]
        for step in range(self.drag_steps):
            if job in self.cancelled:
                return
            f = step / self.drag_steps
            yield "generating", [json.dumps({
                "done": False, "stage": "drag", "fraction": f, "job": job, "step": step,
                "handles": [[round(hx + (tx - hx) * f, 1), round(hy + (ty - hy) * f, 1)] for hx, hy, tx, ty in pts],
                "targets": [[tx, ty] for _, _, tx, ty in pts], "distance_px": []})]
            time.sleep(self.drag_step_s)

    def _download(self, model: str):
        row = next((m for m in self.models if m["id"] == model), None)
        if row is None:
            raise ValueError(f"unknown model {model!r}; known models: {', '.join(m['id'] for m in self.models)}")
        if model in self.offline:
            yield "error", (f"{model}: the Hugging Face Hub cannot be reached (offline); the weights come from "
                            f"{self.offline[model]} — run `priorpaint download {model}` once online")
            return
        total = 3_000_000
        for done in range(0, total + 1, 500_000):
            yield "generating", [json.dumps({"done": False, "stage": "download", "model": model,
                                             "fraction": done / total, "bytes_done": done, "bytes_total": total})]
            time.sleep(0.05)
        row["present"] = True
        yield "complete", [json.dumps({"done": True, "stage": "done", "fraction": 1.0, "model": model,
                                       "present": True, "path": "weights.safetensors", "bytes": total,
                                       "already_present": False})]

    def handle(self, api: str, data: list):
        if api == "cancel":
            self.cancelled.append(data[0])
            return [json.dumps({"cancelled": True, "id": data[0], "jobs": [data[0]]})]
        if api == "models":
            return [json.dumps(self.models)]
        if api == "directions":
            return [json.dumps([{"name": "exposure", "description": "+ brighter, - darker", "min": -3.0,
                                 "max": 3.0, "default": 0.0},
                                {"name": "smile", "description": "+ smiles", "min": -1.5, "max": 1.5,
                                 "default": 0.0}])]
        if api == "preview":   # a square whose brightness follows the strength: the dialog must show it change
            image, _ = self.sessions[data[0]]   # an unknown session is an error, as in the real backend
            specs = json.loads(data[1])
            side = 64
            if isinstance(specs, dict):     # the photo-resolution option: the square's size, at most `size`
                if self.preview_model_only:
                    raise ValueError("edits must be a JSON list of edit specs, got dict")
                side = min(int(specs.get("size") or 1024), max(image.shape[:2]))
                if specs.get("composite", "detail") == "replace":
                    side -= 1               # tells the two modes apart
                specs = specs["edits"]
            strength = float(specs[0].get("strength", 0.0)) if specs else 0.0   # drag: no strength
            level = int(max(0, min(255, 128 + 40 * strength)))
            return [self._file(np.full((side, side, 3), level, np.uint8))]
        if api == "verdict":
            self.sessions[data[0]]
            specs, options = json.loads(data[1]), json.loads(data[2] or "{}")
            if not isinstance(specs, list) or not isinstance(options, dict):
                raise ValueError("edits must be a JSON list of edit specs and options a JSON object")
            if options.get("composite", "detail") not in ("detail", "replace"):
                raise ValueError(f"composite must be one of detail, replace, got {options['composite']!r}")
            if any(sp.get("kind") in ("drag", "paint") for sp in specs):
                raise ValueError("verdict: drag and paint edits take too long to judge; run the edit")
            return [json.dumps(self.verdict_of(specs))]
        if api == "concepts":
            return [json.dumps({"concepts": [{"name": "hair"}, {"name": "door"}], "vectors": []})]
        if api == "project":
            image, mask = self._img(data[0]), self._img(data[1])
            sid = secrets.token_urlsafe(8)
            self.sessions[sid] = (image, mask)
            ys, xs = np.nonzero(mask)
            box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
            square = ops.square_around(box, (image.shape[1], image.shape[0]))
            st = {"done": True, "session": sid, "box": list(box), "square": list(square), "resolution": 64}
            if self.psnr is not None:
                st["psnr_projection"] = self.psnr
            return [json.dumps(st), None, self._file(np.zeros((64, 64, 3), np.uint8)), None]
        if api == "segment":
            image, mask = self.sessions[data[0]]
            labels = np.zeros(image.shape[:2] + (3,), np.uint8)
            labels[:] = LEGEND["background"]
            labels[mask > 0] = LEGEND["face"]
            return [json.dumps({"done": True, "legend": LEGEND}), self._file(labels)]
        if api == "edit":
            want = 5 if self.info is not None else 4
            if len(data) != want:   # as Gradio: a plain-HTTP call must send every input
                raise ValueError(f"edit takes {want} inputs, got {len(data)}")
            if want == 5 and data[4] not in ("detail", "replace"):
                raise ValueError(f"composite must be one of detail, replace, got {data[4]!r}")
            image, mask = self.sessions[data[0]]
            specs = json.loads(data[1])
            files = data[3] or []
            h, w = image.shape[:2]
            alpha = mask.copy()
            rgb = 255 - image[..., :3]
            if specs and specs[0]["kind"] == "segment":
                labels = self._img(files[int(specs[0]["labels"].split(":")[1])])[..., :3]
                if labels.shape[:2] != (h, w):
                    raise ValueError(f"labels are {labels.shape[1]}x{labels.shape[0]}, the layer box is {w}x{h}")
                if specs[0].get("snap"):    # as the real backend: painted colours snap to the nearest legend colour
                    legend = np.array(list(LEGEND.values()), np.int32)
                    d = ((labels[..., None, :].astype(np.int32) - legend[None, None]) ** 2).sum(axis=3)
                    labels = legend[d.argmin(axis=2)].astype(np.uint8)
                known = {tuple(v) for v in LEGEND.values()}
                found = {tuple(int(c) for c in v) for v in np.unique(labels.reshape(-1, 3), axis=0)}
                if not found <= known:   # as the real backend: colours outside the legend are refused
                    raise ValueError(f"labels use colours outside the legend: {sorted(found - known)}")
                changed = (labels != self.segment_labels(mask)).any(axis=2)
                alpha = np.where(changed, 255, 0).astype(np.uint8)
                rgb = labels
            elif specs and specs[0]["kind"] == "paint":
                paint = self._img(files[int(specs[0]["mask"].split(":")[1])])
                alpha = paint if paint.ndim == 2 else paint[..., 0]
            layer = np.dstack([rgb, alpha])
            st = {"done": True, "layer": {"x": 0, "y": 0, "w": w, "h": h}, "changed_outside_mask": 0}
            st.update(self.verdict_of(specs))
            return [json.dumps(st), None, self._file(layer), None]
        raise ValueError(f"unknown endpoint {api}")

    @staticmethod
    def verdict_of(specs: list) -> dict:
        """As the real backend's structure report: a direction pushed past 2 smears instead of
        editing (not carried); no direction edit at all has no verdict (null)."""
        strengths = [abs(float(sp.get("strength", 0))) for sp in specs if sp.get("kind") == "direction"]
        if not strengths:
            return {"structure": {}, "verdict": {"carried": None, "message": "nothing to judge"}}
        if max(strengths) > 2.0:
            return {"structure": {"ssim_change": 0.2}, "verdict": {
                "carried": False, "message": "this edit cannot be carried here: the model smeared the "
                                             "selection; try a smaller strength"}}
        return {"structure": {"ssim_change": 0.9}, "verdict": {"carried": True, "message": "the edit is carried"}}

    @staticmethod
    def segment_labels(mask: np.ndarray) -> np.ndarray:
        labels = np.zeros(mask.shape + (3,), np.uint8)
        labels[:] = LEGEND["background"]
        labels[mask > 0] = LEGEND["face"]
        return labels

    def close(self):
        self.server.shutdown()
        self.server.server_close()
