"""``priorpaint models``: every manifest model, its source, whether its weights are present."""

from __future__ import annotations

import json


def cmd_models(args) -> int:
    from ..models.listing import list_models

    rows = list_models(paths=True)
    if not rows:  # never a silent empty listing: say where manifests were looked for
        from ..errors import ModelError
        from ..models.manifest import manifest_dirs
        raise ModelError("no model manifests found in " + (", ".join(map(str, manifest_dirs())) or "no folder")
                         + " (PRIORPAINT_MANIFEST_DIR replaces the packaged ones)")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = "present" if r["present"] else "not downloaded"
        print(f"{r['id']:<28} {r['architecture']:<10} {r['resolution']:>5}px  {r['domain']:<10} {state:<15} {r['source']}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list every manifest model, its source and whether its weights are present")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)
