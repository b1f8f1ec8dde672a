"""``priorpaint download MODEL... | --all``: fetch and verify hub weights into the Hugging Face cache."""

from __future__ import annotations


def cmd_download(args) -> int:
    from huggingface_hub import constants

    from ..models.download import download, terminal_tqdm

    for r in download(args.models, all_models=args.all, force=args.force, tqdm_class=terminal_tqdm()):
        state = "already present" if r.already_present else "downloaded"
        print(f"{r.model}: {state}, sha256 verified, {r.bytes} bytes: {r.path}")
    print(f"Hugging Face cache: {constants.HF_HUB_CACHE} (HF_HOME / HF_HUB_CACHE move it)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("download", help="download and verify (size + sha256) the weights of hub models into the "
                                        "Hugging Face cache, with a progress bar")
    p.add_argument("models", nargs="*", metavar="MODEL", help="manifest model ids (see `priorpaint models`)")
    p.add_argument("--all", action="store_true", help="every manifest model with a hub source")
    p.add_argument("--force", action="store_true", help="download again even when the file is in the cache")
    p.set_defaults(func=cmd_download)
