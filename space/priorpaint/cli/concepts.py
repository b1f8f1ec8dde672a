"""``priorpaint concepts``: a model's concepts (discovered parts) and saved vectors; derive parts;
write samples to paint labels on and train the segmentation head from them."""

from __future__ import annotations

import json
from pathlib import Path


def cmd_concepts(args) -> int:
    from ..edits.concepts import list_concepts
    from ..edits.parts import PartsRecipe, default_recipe, derive, parts_file, read_parts_file
    from ..edits.seghead import (evaluate_head, get_head, train_head_from_folder, user_head_path,
                                 write_label_samples)
    from ..errors import InputError
    from ..models.registry import load_generator
    from ..store import model_key
    gen = load_generator(args.model, allow_download=args.download)
    if args.derive:
        old = read_parts_file(model_key(gen))
        recipe = None
        if args.k or args.layers:
            base = default_recipe(gen)
            recipe = PartsRecipe(layers=args.layers.split(",") if args.layers else base.layers,
                                 k=args.k or base.k, samples=args.samples_n or base.samples, seed=args.seed)
        names = {}
        for item in filter(None, (args.names or "").split(",")):
            j, eq, n = item.partition("=")
            if not eq or not j.strip().isdigit() or not n.strip():
                raise InputError(f"--names takes CLUSTER=NAME pairs like 0=hair,1=skin; got {item!r}")
            names[int(j)] = n.strip()
        data = derive(gen, recipe, names=names, artifacts=Path(args.artifacts) / "parts")
        kept = "names kept from the existing file" if old and not recipe and not names else "names"
        print(f"derived {len(data['clusters'])} clusters of {data['model']} ({kept}: {', '.join(data['legend'])}); "
              f"cluster maps in {Path(args.artifacts) / 'parts'}; wrote {parts_file(data['model'])}")
        return 0
    if args.samples:
        write_label_samples(gen, Path(args.samples), args.n, args.seed)
        print(f"wrote {args.n} samples to {args.samples}: paint over labels_XX.png with the colours of legend.json "
              f"(add classes there if you need them), then run `priorpaint concepts --train-head {args.samples}`")
        return 0
    if args.train_head:
        print(json.dumps(train_head_from_folder(gen, Path(args.train_head), args.legend), indent=1))
        return 0
    if args.reset_head:
        p = user_head_path(gen)
        if p.exists():
            p.unlink()
        print(f"removed the user-trained head of {model_key(gen)}; the discovered parts label images again")
        return 0
    info = list_concepts(gen=gen)
    if args.evaluate:
        info["head_quality"] = evaluate_head(gen, get_head(gen))
    if args.json:
        print(json.dumps(info, indent=1, default=float))
        return 0
    print(f"concepts of {info['model']} (paint:CONCEPT=add|remove@PAINT.png; colours as in `priorpaint segment`):")
    for c in info["concepts"]:
        units = ", ".join(str(u["unit"]) for u in c["top_units"])
        print(f"  {c['name']:<18} rgb {str(c['colour']):<16} top units {units}")
    if "head_quality" in info:
        q = info["head_quality"]
        print(f"segmentation head vs discovered parts: pixel accuracy {q['pixel_accuracy']:.3f}, mIoU {q['miou']:.3f} "
              f"({q['samples']} held-out samples)")
    print(f"saved vectors (vector:NAME=STRENGTH): {', '.join(v['name'] for v in info['vectors']) or 'none'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("concepts", help="list the concepts (discovered parts) and saved editing vectors of a model; "
                                        "derive parts; train the segmentation head from painted labels")
    p.add_argument("--model", default=None, help="model id (default: the embedded default)")
    p.add_argument("--download", action="store_true", help="allow downloading a hub model's weights")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--evaluate", action="store_true",
                   help="also report the segmentation head's pixel accuracy and mean IoU on held-out samples")
    g = p.add_argument_group("part discovery")
    g.add_argument("--derive", action="store_true",
                   help="re-derive the parts by k-means, write weights_manifest/parts/<model>.json and the cluster maps")
    g.add_argument("--k", type=int, default=None, help="clusters (with --derive; default: the shipped recipe)")
    g.add_argument("--layers", default=None, help="comma-separated layers to cluster (with --derive)")
    g.add_argument("--samples-n", type=int, default=None, help="sampled latents (with --derive)")
    g.add_argument("--names", default=None, help="cluster names, e.g. 0=hair,1=skin (with --derive)")
    g.add_argument("--artifacts", default="artifacts", help="where --derive writes the cluster maps (default artifacts/)")
    g = p.add_argument_group("painted labels")
    g.add_argument("--samples", metavar="DIR", help="write generated samples and their label maps to paint over")
    g.add_argument("--n", type=int, default=8, help="samples to write (at most 16; default 8)")
    g.add_argument("--seed", type=int, default=0, help="seed of the samples / of --derive's k-means")
    g.add_argument("--train-head", metavar="DIR", help="train the segmentation head from the painted labels in DIR")
    g.add_argument("--legend", default=None, help="legend JSON for --train-head (default DIR/legend.json)")
    g.add_argument("--reset-head", action="store_true", help="forget a head trained from painted labels")
    p.set_defaults(func=cmd_concepts)
