"""A standard-library client of the priorpaint backend's plain-HTTP Gradio API.

The protocol (see ``docs/api.md``):

1. ``POST /gradio_api/upload`` (multipart field ``files``) -> list of server paths;
2. ``POST /gradio_api/call/<api_name>`` with ``{"data": [...]}`` -> ``{"event_id": ...}``;
3. ``GET /gradio_api/call/<api_name>/<event_id>`` -> server-sent events ``generating``
   (intermediate outputs; the first output is a status JSON string with ``stage``,
   ``fraction`` and ``job``), ``complete``, ``error``, ``heartbeat``.

Every request carries ``Authorization: Bearer <token>`` when a token is set, and the
cookies the backend set (its ``priorpaint_client`` id: what this client saves, such as
editing vectors, and the sessions it projects stay its own across calls). Every client of one
process shares one cookie jar (a dialog's preview worker projects, the procedure edits that
session), and a remote backend's cookie is kept on disk beside the settings
(:func:`cookie_path`, mode 0600), so that a later run of the plug-in (Apply segmentation after
Segment selection) is the same client: a remote backend lets only the id that made a session
use it. A refused
connection is retried a few times, then reported as
"backend not running at URL — start it with `priorpaint serve`".
"""

from __future__ import annotations

import errno
import http.cookiejar
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

from . import settings as _settings

ProgressFn = Callable[[float, str, dict], None]


class BridgeError(Exception):
    """Anything that went wrong talking to the backend; ``str()`` is a user-facing message."""


class BackendNotRunning(BridgeError):
    """Nothing listens at the backend URL."""


class BackendError(BridgeError):
    """The backend answered with an error (HTTP error status or an ``error`` event)."""


class Cancelled(BridgeError):
    """The job was cancelled by the user."""


def not_running_message(url: str) -> str:
    return f"backend not running at {url} — start it with `priorpaint serve`"


def _is_refused(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return True
    return isinstance(reason, OSError) and reason.errno in (errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", -1))


def parse_sse(lines: Iterable[bytes]) -> Iterator[Tuple[str, str]]:
    """Server-sent events from an iterable of raw lines -> ``(event, data)`` pairs.

    Follows the SSE rules: ``field: value`` lines (one optional space after the colon),
    several ``data`` lines joined with newlines, comments start with ``:``, a blank line
    dispatches the event; an event without ``event:`` is ``message``.
    """
    event, data = "", []
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else raw
        line = line.rstrip("\r\n")
        if line == "":
            if data or event:
                yield (event or "message"), "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data or event:
        yield (event or "message"), "\n".join(data)


def error_message(data: str) -> str:
    """The one-line message of an ``error`` event's data (JSON string, object or text)."""
    text = (data or "").strip()
    if not text or text == "null":
        return "the backend reported an error without a message (see the server log)"
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("message", "error", "detail", "title"):
            if value.get(key):
                return str(value[key])
    return text


def status_of(outputs: Any) -> dict:
    """The status dict carried as the first output (a JSON string) of a long endpoint."""
    if not isinstance(outputs, list) or not outputs:
        return {}
    first = outputs[0]
    if isinstance(first, dict):
        return first
    if isinstance(first, str):
        try:
            value = json.loads(first)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def file_data(path: str) -> dict:
    """A Gradio file input referring to an uploaded server path."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def cookie_path():
    """Where a remote backend's cookies are kept: beside the settings file."""
    return _settings.settings_path().with_name("cookies.lwp")


_JAR: Optional[http.cookiejar.LWPCookieJar] = None


def shared_cookies() -> http.cookiejar.LWPCookieJar:
    """This process's cookie jar, read once from :func:`cookie_path` (an unreadable file is ignored)."""
    global _JAR
    if _JAR is None:
        jar = http.cookiejar.LWPCookieJar(str(cookie_path()))
        try:
            jar.load()
        except (OSError, http.cookiejar.LoadError):
            pass
        _JAR = jar
    return _JAR


def _is_loopback_url(url: str) -> bool:
    import ipaddress
    host = (urllib.parse.urlsplit(url).hostname or "").strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Client:
    """Talks to one backend. ``bytes_sent``/``bytes_received`` count request/response bodies."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None,
                 timeout: Optional[float] = None, connect_retries: int = 3, retry_delay: float = 0.5,
                 settings: Optional[_settings.Settings] = None):
        s = settings or _settings.Settings()
        self.url = _settings.resolve_url(url or s.url)
        self.token = token if token is not None else (s.token or os.environ.get("PRIORPAINT_TOKEN", ""))
        self.timeout = float(timeout or s.timeout or _settings.DEFAULT_TIMEOUT)
        self.connect_retries = max(0, int(connect_retries))
        self.retry_delay = float(retry_delay)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.last_cancel: Optional[dict] = None   # the cancel endpoint's answer after should_cancel fired
        self.preview_model_only = False            # the backend's preview has no photo-resolution option
        self._info: Optional[dict] = None          # /gradio_api/info, read once when needed
        #: the backend's cookies (its client id): this process's jar (:func:`shared_cookies`)
        self.cookies = shared_cookies()
        #: whether a new cookie is written to disk: a remote backend's (on loopback the machine
        #: owns every session, so nothing needs to outlive the process)
        self.keep_cookies = not _is_loopback_url(self.url)
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    @classmethod
    def from_settings(cls, **kw) -> "Client":
        return cls(settings=_settings.load(), **kw)

    # -- transport -------------------------------------------------------------------------
    def _headers(self, extra: Optional[dict] = None) -> dict:
        h = {"User-Agent": "priorpaint-gimp-bridge/1"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if extra:
            h.update(extra)
        return h

    def _open(self, method: str, url: str, body: Optional[bytes] = None,
              headers: Optional[dict] = None, timeout: Optional[float] = None):
        req = urllib.request.Request(url, data=body, method=method, headers=self._headers(headers))
        attempt = 0
        while True:
            try:
                resp = self._opener.open(req, timeout=timeout or self.timeout)
                if body:
                    self.bytes_sent += len(body)
                if self.keep_cookies and resp.headers.get("Set-Cookie"):
                    self._save_cookies()
                return resp
            except urllib.error.HTTPError as exc:
                if body:
                    self.bytes_sent += len(body)
                raise self._http_error(exc) from None
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                if _is_refused(exc):
                    if attempt < self.connect_retries:
                        attempt += 1
                        time.sleep(self.retry_delay * attempt)
                        continue
                    raise BackendNotRunning(not_running_message(self.url)) from None
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, (socket.timeout, TimeoutError)):
                    raise BridgeError(f"the backend at {self.url} did not answer within {self.timeout:.0f} s") from None
                raise BridgeError(f"cannot reach the backend at {self.url}: {reason}") from None

    def _save_cookies(self) -> None:
        """Write the jar to :func:`cookie_path` (mode 0600, atomically); a failure loses nothing
        but the next run's id."""
        path = cookie_path()
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)
            self.cookies.save(str(tmp))
            os.replace(tmp, path)
        except OSError:
            pass

    def _http_error(self, exc: urllib.error.HTTPError) -> BridgeError:
        try:
            text = exc.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        detail = text
        try:
            value = json.loads(text)
            if isinstance(value, dict):
                detail = str(value.get("detail") or value.get("error") or value.get("message") or text)
        except ValueError:
            pass
        if exc.code in (401, 403):
            return BackendError(f"the backend at {self.url} refused the request ({exc.code}): "
                                f"set the token in priorpaint Settings (or PRIORPAINT_TOKEN)")
        if exc.code == 413:
            return BackendError(f"the backend at {self.url} rejected the upload as too large (413)")
        if exc.code == 404:
            return BackendError(f"the backend at {self.url} has no such endpoint ({exc.geturl()}): "
                                f"is it a priorpaint server of a matching version? {detail}".rstrip())
        return BackendError(f"the backend at {self.url} answered {exc.code}: {detail}".rstrip(": "))

    def _json(self, method: str, path: str, payload: Any = None, timeout: Optional[float] = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        with self._open(method, self.url + path, body, headers, timeout) as resp:
            raw = resp.read()
        self.bytes_received += len(raw)
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            raise BackendError(f"the backend at {self.url} sent a reply that is not JSON: {raw[:200]!r}") from None

    # -- API -------------------------------------------------------------------------------
    def upload(self, data: bytes, filename: str = "image.png", content_type: str = "image/png") -> str:
        """Upload one file; return its server path."""
        boundary = "----priorpaint" + uuid.uuid4().hex
        safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        body = b"".join([
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="files"; filename="{safe_name}"\r\n'.encode(),
            f"Content-Type: {content_type}\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ])
        with self._open("POST", self.url + "/gradio_api/upload", body,
                        {"Content-Type": f"multipart/form-data; boundary={boundary}"}) as resp:
            raw = resp.read()
        self.bytes_received += len(raw)
        try:
            paths = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise BackendError(f"unexpected upload reply from {self.url}: {raw[:200]!r}") from None
        if not isinstance(paths, list) or not paths:
            raise BackendError(f"unexpected upload reply from {self.url}: {paths!r}")
        return str(paths[0])

    def upload_file_data(self, data: bytes, filename: str = "image.png") -> dict:
        return file_data(self.upload(data, filename))

    def submit(self, api_name: str, data: List[Any]) -> str:
        reply = self._json("POST", f"/gradio_api/call/{api_name}", {"data": data})
        if not isinstance(reply, dict) or "event_id" not in reply:
            raise BackendError(f"the backend at {self.url} did not start {api_name!r}: {reply!r}")
        return str(reply["event_id"])

    def events(self, api_name: str, event_id: str) -> Iterator[Tuple[str, str]]:
        resp = self._open("GET", f"{self.url}/gradio_api/call/{api_name}/{event_id}",
                          headers={"Accept": "text/event-stream"})

        def lines():
            try:
                while True:
                    try:
                        line = resp.readline()
                    except (socket.timeout, TimeoutError):
                        raise BridgeError(f"the backend at {self.url} sent nothing for {self.timeout:.0f} s "
                                          f"while running {api_name!r}") from None
                    if not line:
                        return
                    self.bytes_received += len(line)
                    yield line
            finally:
                resp.close()

        return parse_sse(lines())

    def call(self, api_name: str, data: List[Any], on_progress: Optional[ProgressFn] = None,
             should_cancel: Optional[Callable[[], bool]] = None,
             on_job: Optional[Callable[[str], None]] = None,
             on_outputs: Optional[Callable[[List[Any]], None]] = None) -> List[Any]:
        """Run an endpoint to completion and return its final outputs.

        ``on_progress(fraction, stage, status)`` is called for every intermediate status;
        ``on_outputs(outputs)`` for every intermediate set of outputs (a generator endpoint's
        earlier yields, e.g. the ``preview``'s approximate frame);
        ``on_job(job_id)`` once the backend names the job; when ``should_cancel()`` turns
        true the job is cancelled through the ``cancel`` endpoint and :class:`Cancelled`
        is raised.
        """
        event_id = self.submit(api_name, data)
        job = None
        for event, payload in self.events(api_name, event_id):
            if event == "heartbeat":
                pass
            elif event == "error":
                raise BackendError(error_message(payload))
            elif event in ("generating", "complete", "message"):
                try:
                    outputs = json.loads(payload) if payload else None
                except ValueError:
                    raise BackendError(f"{api_name}: the backend sent malformed data: {payload[:200]!r}") from None
                st = status_of(outputs)
                if st.get("job") and st.get("job") != job:
                    job = str(st["job"])
                    if on_job is not None:
                        on_job(job)
                if event == "complete":
                    if not isinstance(outputs, list):
                        raise BackendError(f"{api_name}: the backend sent no outputs: {payload[:200]!r}")
                    if on_progress is not None:
                        on_progress(1.0, str(st.get("stage", "done")), st)
                    return outputs
                if on_progress is not None and st:
                    on_progress(float(st.get("fraction") or 0.0), str(st.get("stage", "")), st)
                if on_outputs is not None and event == "generating" and isinstance(outputs, list):
                    on_outputs(outputs)
            if should_cancel is not None and should_cancel():
                self.last_cancel = self.cancel(job or event_id)
                raise Cancelled(f"{api_name} cancelled")
        raise BackendError(f"{api_name}: the backend closed the stream before finishing "
                           f"(the server may have stopped or restarted)")

    def endpoint_inputs(self, api_name: str) -> Optional[List[str]]:
        """The input names of a named endpoint from ``/gradio_api/info`` (cached), or None if unknown.

        Lets the bridge send an optional input (``edit``'s ``composite``) only to a backend
        that declares it; an older backend would refuse a longer input list.
        """
        if self._info is None:
            try:
                info = self._json("GET", "/gradio_api/info")
            except BridgeError:
                info = {}
            self._info = info if isinstance(info, dict) else {}
        endpoint = (self._info.get("named_endpoints") or {}).get("/" + api_name)
        if not isinstance(endpoint, dict):
            return None
        return [str(p.get("parameter_name") or p.get("label") or "") for p in endpoint.get("parameters") or []
                if isinstance(p, dict)]

    def predict(self, api_name: str, *data: Any) -> List[Any]:
        return self.call(api_name, list(data))

    def cancel(self, job_or_session: str) -> dict:
        """Ask the backend to cancel a job (or every job of a session)."""
        outputs = self.call("cancel", [job_or_session])
        return status_of(outputs)

    def file_url(self, output: Any) -> str:
        """The URL of a file output (object with ``url``/``path``, or a plain path)."""
        if isinstance(output, dict):
            url, path = output.get("url"), output.get("path")
        else:
            url, path = None, str(output)
        if url:
            if url.startswith("/"):
                return self.url + url
            parsed, ours = urllib.parse.urlsplit(url), urllib.parse.urlsplit(self.url)
            if parsed.netloc == ours.netloc or not path:
                return url
            # A URL built for another host name (server bound to 0.0.0.0, a proxy): ask ours.
            return f"{self.url}{parsed.path}" + (f"?{parsed.query}" if parsed.query else "")
        if path:
            return f"{self.url}/gradio_api/file={urllib.parse.quote(path)}"
        raise BackendError(f"the backend returned no file where one was expected: {output!r}")

    def download(self, output: Any) -> bytes:
        with self._open("GET", self.file_url(output)) as resp:
            raw = resp.read()
        self.bytes_received += len(raw)
        return raw
