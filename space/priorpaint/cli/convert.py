"""``priorpaint convert``: a published checkpoint to safetensors + config JSON, without running its code."""

from __future__ import annotations

from pathlib import Path


def cmd_convert(args) -> int:
    from ..models.convert import convert

    record = convert(args.input, args.output, overwrite=args.force)
    cfg = record["config"]
    print(f"wrote {args.output} ({record['tensors']} tensors, StyleGAN2 {cfg['size']}x{cfg['size']}, "
          f"style_dim {cfg['style_dim']}, n_mlp {cfg['n_mlp']}) and {Path(args.output).with_suffix('.json')}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="convert a StyleGAN2 checkpoint (rosinality .pt, or an NVIDIA .pkl: "
                                       "stylegan2-ada-pytorch / stylegan3 / TensorFlow) to safetensors + config JSON")
    p.add_argument("input", help="the .pt checkpoint (read with torch.load(weights_only=True)) or NVIDIA network "
                                 "pickle (read by a restricted unpickler); no code in either runs")
    p.add_argument("output", help="the .safetensors file to write (its config JSON goes beside it)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=cmd_convert)
