"""Where a model comes from, for ``load_model``'s messages: whether the hub answers at all, and what is
wrong with a local model folder."""
from __future__ import annotations

import json
from pathlib import Path


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection attempt, so that offline users get an answer at once, not after retries."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def folder_problem(path) -> str | None:
    """What is wrong with a local model folder (None when path is no folder: then it is a hub name)."""
    folder = Path(str(path)).expanduser()
    if not folder.is_dir():
        return None
    save = "A model folder holds what model.save_pretrained(folder) and tokenizer.save_pretrained(folder) write."
    cfg = folder / "config.json"
    if not cfg.is_file():
        return f"the folder {folder} exists but has no config.json. {save}"
    try:
        kind = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, AttributeError) as e:
        return f"{cfg} is not a valid JSON object ({e}); restore it from the model's source"
    from transformers import CONFIG_MAPPING
    if kind not in CONFIG_MAPPING:
        return (f"{cfg} names model_type {kind!r}, which this transformers version does not know; upgrade "
                "transformers, or check the file")
    if not any(folder.glob("*.safetensors")):
        return f"the folder {folder} has no *.safetensors weights (bbtkit loads no pickled .bin files). {save}"
    return f"the folder {folder} has a config and weights, but loading failed; they may be damaged or not match"
