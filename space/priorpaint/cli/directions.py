"""``priorpaint directions``: a model's named latent directions; compute them; derive grids to name them."""

from __future__ import annotations

import json
from pathlib import Path


def cmd_directions(args) -> int:
    from .. import store
    from ..edits.directions import ATTRIBUTES, derive, list_directions, load_named, prepare
    from ..models.manifest import DEFAULT_MODEL, get_entry
    if args.convert:
        from ..edits.directions.published import convert_published
        print(json.dumps(convert_published(Path(args.convert[0]), Path(args.convert[1])), indent=2))
        return 0
    model_id = get_entry(args.model).id if args.model else DEFAULT_MODEL
    if args.derive or args.compute:
        from ..models.registry import load_generator
        gen = load_generator(model_id, allow_download=args.download)
        if args.compute:
            for name, sec in prepare(gen, model_id).items():
                print(f"{name:<22} ready ({sec:.2f} s)")
        if args.derive:
            report = derive(gen, Path(args.out), count=args.count, samples=args.samples,
                            progress=lambda m: print(f"[directions] {m}"))
            print(f"wrote grids and {store.model_key(gen)}-measurements.json to {args.out}")
            for method, rows in report["components"].items():
                for row in rows:
                    tag = row.get("component", row.get("attribute"))
                    top = sorted(((k, v) for k, v in row.items() if k in ATTRIBUTES), key=lambda kv: -abs(kv[1]))[:3]
                    print(f"  {method:<11} {tag!s:<11} " + ", ".join(f"{k} {v:+.2f}" for k, v in top))
        return 0
    rows = list_directions(model_id)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    named = load_named(model_id)
    if not named.get("directions"):
        print(f"{model_id} has no named directions{': ' + named['note'] if named.get('note') else ''}; "
              "its raw components:")
    elif named.get("provenance"):
        src = named["provenance"]
        print(f"{model_id}: published directions from {src.get('repository')} at {str(src.get('commit'))[:12]} "
              f"({src.get('license')}, {src.get('copyright')})")
    for r in rows:
        print(f"{r['name']:<20} [{r['min']:+g}, {r['max']:+g}]  {r['method']:<12} {r['description']}")
    print("use: --edit direction:NAME=STRENGTH (the strength's meaning is in each description; outside the "
          "range it is clamped, with a note); raw components: sefaK, ganspaceK")
    return 0


def add_parser(sub) -> None:
    from ..edits.directions.base import GANSPACE_SAMPLES

    p = sub.add_parser("directions", help="list a model's named latent directions, what each does and its strength range")
    p.add_argument("--model", default=None, help="manifest model id (default: the embedded default)")
    p.add_argument("--json", action="store_true", help="print JSON: [{name, description, min, max, default, method}]")
    p.add_argument("--derive", action="store_true",
                   help="compute SeFa, GANSpace and supervised directions and write grids (rows = component, "
                        "columns = strength -3..+3) and measured effects, to name them")
    p.add_argument("--compute", action="store_true", help="compute and cache every named direction now")
    p.add_argument("--out", default="artifacts/directions", help="folder for --derive (default artifacts/directions)")
    p.add_argument("--count", type=int, default=8, help="components per method in the grids (default 8)")
    p.add_argument("--samples", type=int, default=GANSPACE_SAMPLES, help="GANSpace samples (default 20000)")
    p.add_argument("--download", action="store_true", help="allow downloading a hub model's weights")
    p.add_argument("--convert", nargs=2, metavar=("SRC.pt", "DST.safetensors"), default=None,
                   help="convert a published direction file (a tensor or a dict of tensors, read with "
                        "torch.load(weights_only=True)) to safetensors once; prints both sha256s for its entry")
    p.set_defaults(func=cmd_directions)