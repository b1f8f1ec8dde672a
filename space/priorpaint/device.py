"""Choosing the torch device: CUDA when present, else CPU; ``PRIORPAINT_DEVICE`` overrides."""

import os

import torch


def default_device() -> torch.device:
    name = os.environ.get("PRIORPAINT_DEVICE", "").strip()
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_device(device=None) -> torch.device:
    if device is None:
        return default_device()
    return device if isinstance(device, torch.device) else torch.device(device)
