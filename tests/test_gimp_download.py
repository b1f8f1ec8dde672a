"""What the GIMP Settings dialog does with a model that is not downloaded, against the real
``priorpaint serve`` and a local Hub endpoint (as in test_download.py): the listing marks it,
the download comes with byte progress and a sha256 check, and offline the error is the
backend's one line naming the model, the repo and the command."""

from __future__ import annotations

import hashlib
import json

import pytest

from gimp_backend import Backend
from gimp_bridge import catalog
from gimp_bridge.client import BridgeError, Client
from test_download import Hub, _env, _manifest, checkpoint  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_bridge_lists_downloads_with_progress_and_says_offline(tmp_path, checkpoint, monkeypatch):  # noqa: F811
    manifest = _manifest(tmp_path, checkpoint)
    entry = json.loads((manifest / "tiny-sg2.json").read_text())
    files = {("priorpaint-test/tiny-sg2", "sg2.pt"): checkpoint}
    for i, suffix in enumerate(("b", "c"), 1):     # more models, other files (presence is by content)
        other = checkpoint + b"\0" * i
        e = json.loads(json.dumps(entry))
        e["id"] = f"tiny-sg2-{suffix}"
        e["sources"][0].update(repo_id=f"priorpaint-test/tiny-sg2-{suffix}", sha256=hashlib.sha256(other).hexdigest(),
                               size=len(other))
        (manifest / f"tiny-sg2-{suffix}.json").write_text(json.dumps(e))
        files[(f"priorpaint-test/tiny-sg2-{suffix}", "sg2.pt")] = other
    hub = Hub(files)
    for k, v in _env(tmp_path, hub.url, manifest).items():
        monkeypatch.setenv(k, v)
    backend = Backend(tmp_path / "serve.log")
    try:
        client = Client(backend.url)
        rows = catalog.list_models(client)
        # the server's default model (with this manifest, one of these) is fetched when it starts
        missing = [r["id"] for r in rows if not r["present"]]
        assert len(missing) >= 2, rows
        assert all(catalog.model_label(r).endswith("— not downloaded") == (r["id"] in missing) for r in rows)
        first, second = missing[:2]
        seen = []
        st = catalog.download_model(client, first, progress=lambda f, t: seen.append((f, t)))
        size = len(files[(f"priorpaint-test/{first}", "sg2.pt")])
        assert st["present"] and st["bytes"] == size and st["already_present"] is False
        assert seen and seen[-1][0] == 1.0 and all(0.0 <= f <= 1.0 for f, _ in seen)
        assert any(t.startswith(f"Downloading {first}") for _, t in seen)
        rows = {r["id"]: r for r in catalog.list_models(client)}
        assert "not downloaded" not in catalog.model_label(rows[first])
        assert catalog.model_label(rows[second]).endswith("— not downloaded")
    finally:
        backend.stop()
        hub.close()
    # offline: nothing listens where the Hub should be
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    backend = Backend(tmp_path / "serve-offline.log")
    try:
        with pytest.raises(BridgeError) as e:
            catalog.download_model(Client(backend.url), second)
    finally:
        backend.stop()
    msg = str(e.value)
    assert "\n" not in msg and second in msg and f"priorpaint-test/{second}" in msg
    assert f"run `priorpaint download {second}` once online" in msg
