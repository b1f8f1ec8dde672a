"""``priorpaint train-encoder``: train a model's inverting network (see
:mod:`priorpaint.projection.encoder`), with a progress bar, resumable from its checkpoint.

Writes ``FILE`` (safetensors: the weights, the encoder's config, the generator it belongs to
and the training record) and a manifest entry of kind ``encoder`` beside it (``FILE`` with
``.json``, or ``--manifest``).  The default ``FILE`` is in the user's encoders folder under
the priorpaint cache, which projection searches before the manifest, so a trained encoder
is used from the next projection on.
"""

from __future__ import annotations

import sys
from pathlib import Path


def cmd_train_encoder(args) -> int:
    from tqdm import tqdm

    from ..errors import InputError
    from ..models.registry import load_generator
    from ..projection.encoder import save_encoder, user_encoders_dir
    from ..projection.encoder_training import EncoderTrainConfig, train_encoder

    if args.steps < 1:
        raise InputError("--steps must be 1 or more")
    if args.batch < 2:
        raise InputError("--batch must be 2 or more")
    gen = load_generator(args.model, allow_download=args.download)
    out = Path(args.out) if args.out else user_encoders_dir() / f"{gen.model_id}-encoder.safetensors"
    if out.suffix != ".safetensors":
        raise InputError(f"--out must name a .safetensors file, got {out}")
    ckpt = out.with_name(out.name + ".ckpt")
    if args.fresh and ckpt.exists():
        ckpt.unlink()
    cfg = EncoderTrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, lr=args.lr,
                             width=args.width, perceptual=not args.no_perceptual)
    bar = tqdm(total=cfg.steps, desc=f"train-encoder {gen.model_id}", unit="step", file=sys.stderr,
               disable=args.quiet, dynamic_ncols=True)

    def on_step(done, total, row):
        if bar.n == 0 and done > 1:
            bar.update(done - 1)  # resumed
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.3f}", rec_dB=f"{row['psnr_rec_h']:.1f}", refresh=False)

    try:
        result = train_encoder(gen, cfg, checkpoint_path=ckpt, on_step=on_step)
    finally:
        bar.close()
    train = {"config": cfg.key(), "seconds": round(result.seconds, 1), "device": str(gen.device),
             "resumed_from": result.resumed_from, "perceptual_loss": result.perceptual_used,
             "torch": __import__("torch").__version__,
             "threads": __import__("torch").get_num_threads(),
             "history": [{k: round(v, 5) for k, v in row.items()} for row in result.history]}
    path, manifest, entry = save_encoder(result.encoder, out, gen, train=train,
                                         manifest_path=Path(args.manifest) if args.manifest else None)
    ckpt.unlink(missing_ok=True)
    last = result.history[-1]
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and {manifest} (entry {entry['id']}): "
          f"{cfg.steps} steps in {result.seconds:.0f} s on {gen.device}, last loss {last['loss']:.4f}, "
          f"reconstruction {last['psnr_rec_h']:.1f} dB on generated samples")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train-encoder",
        help="train a model's inverting network E (image -> latent and split feature) for fast hybrid projection",
        description="Train the encoder E of a model with the generator frozen, on its own samples "
                    "(latent regression + reconstruction through G, augmented so real crops land near "
                    "the generator's range). Deterministic for a seed on one device; resumes from "
                    "FILE.ckpt after an interruption. Projection uses it as the start of its optimisation.")
    p.add_argument("--model", default=None, help="manifest model id (default: dcgan-digiface-64)")
    p.add_argument("--download", action="store_true", help="allow downloading a hub model's weights")
    p.add_argument("--steps", type=int, default=600,
                   help="training steps (default 600; the embedded model's shipped encoder was trained for 3000)")
    p.add_argument("--batch", type=int, default=16, help="generated samples per step (default 16)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate, cosine-decayed (default 0.002)")
    p.add_argument("--width", type=int, default=16, help="channels of the encoder's first layer (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", help="the .safetensors file to write (default: <cache>/encoders/MODEL-encoder.safetensors, "
                                 "which projection finds by itself)")
    p.add_argument("--manifest", help="where to write the manifest entry (default: beside --out, .json)")
    p.add_argument("--fresh", action="store_true", help="ignore a checkpoint of an earlier run and start over")
    p.add_argument("--no-perceptual", action="store_true", help="pixel losses only, even when the perceptual weights are present")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_encoder)
