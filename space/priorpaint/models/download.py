"""Fetching a manifest model's weights into the Hugging Face cache, verified.

``priorpaint download MODEL...`` / ``--all`` (``cli/download.py``) and the
app's ``download`` endpoint both call :func:`download`: ``huggingface_hub.hf_hub_download``
at the manifest's pinned revision, with huggingface_hub's own tqdm progress bar (or a
``progress(done, total)`` callback), then the size and sha256 check of the manifest.  A
dropped connection is resumed by huggingface_hub with an HTTP Range request; huggingface_hub
2.x deletes the partial file of an interrupted *run*, so a new run starts that file over.
A file that fails the check is removed from the cache (so the next run fetches it again) and
refused.  Offline, the error is one line naming the model, the repo and the command to run
once online.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional

from ..errors import InputError, ModelError, WeightsIntegrityError
from .manifest import ModelEntry, load_manifest
from .hub import hub_unreachable, offline_message
from .weights import verify, weights_status

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, Optional[int]], None]


@dataclass
class Downloaded:
    model: str
    path: str
    cache_dir: str
    source: str
    bytes: int
    already_present: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _callback_tqdm(callback: ProgressCallback):
    """A tqdm class for ``hf_hub_download(tqdm_class=...)`` that reports to ``callback``."""
    from tqdm.auto import tqdm

    class CallbackTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no terminal output; the callback is the display
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)

        def update(self, n=1):
            self._done += int(n or 0)
            callback(self._done, int(self.total) if self.total else None)
            return super().update(n)

    return CallbackTqdm


def _remove_cached(path: Path) -> None:
    """Drop a file that failed verification from the cache (the snapshot link and its blob)."""
    try:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        if blob != path:
            blob.unlink(missing_ok=True)
    except OSError as e:  # pragma: no cover - a read-only cache
        log.warning("could not remove %s from the cache: %s", path, e)


def terminal_tqdm():
    """huggingface_hub's tqdm, shown on stderr even when it is not a terminal (a pipe, a log),
    unless ``HF_HUB_DISABLE_PROGRESS_BARS`` is set."""
    from huggingface_hub.utils import are_progress_bars_disabled
    from huggingface_hub.utils.tqdm import tqdm

    class TerminalTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = are_progress_bars_disabled()
            super().__init__(*args, **kwargs)

    return TerminalTqdm


def download_entry(entry: ModelEntry, progress: Optional[ProgressCallback] = None,
                   force: bool = False, tqdm_class=None) -> Downloaded:
    """Fetch (or find) and verify the weights of one entry."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    present, src, path = weights_status(entry)
    if present and not force:
        verify(path, src.sha256, f"{entry.id} ({src.describe()})", size=src.size)
        return Downloaded(entry.id, str(path), str(constants.HF_HUB_CACHE) if src.type == "hub" else str(path.parent),
                          src.describe(), path.stat().st_size, True)
    hub = [s for s in entry.sources if s.type == "hub"]
    if not hub:
        raise ModelError(f"model {entry.id} has no hub source to download, and its file is not here "
                         f"(tried: {'; '.join(s.describe() for s in entry.sources)})")
    src = hub[0]
    if hub_unreachable():
        raise ModelError(offline_message(entry, src))
    kwargs = dict(repo_id=src.repo_id, filename=src.filename, revision=src.revision, force_download=force)
    if progress is not None:
        kwargs["tqdm_class"] = _callback_tqdm(progress)
    elif tqdm_class is not None:
        kwargs["tqdm_class"] = tqdm_class
    try:
        path = Path(hf_hub_download(**kwargs))
    except LocalEntryNotFoundError:
        raise ModelError(offline_message(entry, src)) from None
    except HfHubHTTPError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"cannot download {entry.id} from {src.describe()}: {first}") from None
    except OSError as e:  # connection dropped for good, disk full, consistency check
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelError(f"download of {entry.id} from {src.describe()} failed: {first}; "
                         f"run `priorpaint download {entry.id}` again") from None
    try:
        verify(path, src.sha256, f"{entry.id} ({src.describe()})", size=src.size)
    except WeightsIntegrityError as e:
        _remove_cached(path)
        raise WeightsIntegrityError(f"{e} (removed from the cache)") from None
    return Downloaded(entry.id, str(path), str(constants.HF_HUB_CACHE), src.describe(), path.stat().st_size, False)


def download(models: List[str], all_models: bool = False, progress: Optional[ProgressCallback] = None,
             force: bool = False, tqdm_class=None) -> List[Downloaded]:
    """:func:`download_entry` for each named model (any kind), or every entry with a hub source."""
    if all_models and models:
        raise InputError("give model names or --all, not both")
    if all_models:
        entries = [e for e in load_manifest().values() if any(s.type == "hub" for s in e.sources)]
    else:
        if not models:
            raise InputError("name at least one model (see `priorpaint models`), or pass --all")
        known = load_manifest()
        missing = [m for m in models if m not in known]
        if missing:
            raise InputError(f"unknown model {missing[0]!r}; known models: {', '.join(sorted(known))}")
        entries = [known[m] for m in models]
    return [download_entry(e, progress=progress, force=force, tqdm_class=tqdm_class) for e in entries]


__all__ = ["download", "download_entry", "offline_message", "hub_unreachable", "Downloaded"]
