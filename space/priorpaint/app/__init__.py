"""The Gradio app and its API: the only part of priorpaint that imports Gradio.

* :mod:`.server` — ``priorpaint serve`` (bind checks, token middleware, upload limit) and
  ``priorpaint space-export``; :func:`.server.build` makes the app, :func:`.server.launch` runs it.
* :mod:`.ui` — the page (editor, Project, one tab per edit kind, Render) and the named
  API endpoints of ``docs/api.md``.
* :mod:`.api` — the endpoint functions (generators that stream a status JSON).
* :mod:`.sessions` — the LRU session store and the job registry (cancel); :mod:`.runner` runs a job.
* :mod:`.clients` — who a request comes from (the issued client id, its address, trusted proxies).
* :mod:`.kinds` — what the edit modules offer (directions, concepts, label maps).
* :mod:`.gpu` — ``spaces.GPU`` when present.  (The ``app`` benchmark section is
  :mod:`priorpaint.bench.app`.)
"""
