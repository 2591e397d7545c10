"""Language models behind the black box: the embedded default, hub models, and tiny test models,
loaded into :class:`~bbtkit.model.lm.LM` (the uniform view; ``bbtkit.model.lm`` says what it holds).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from transformers import PreTrainedModel  # noqa: F401  (pays the import cost once, at import)
from transformers.utils import logging as hf_logging

from .embedded import EMBEDDED, embedded_dir
from .lm import LM, ModelNotAvailableError, family_of
from .sources import folder_problem, hub_reachable
from ..runtime import pick_device, pick_dtype
from .tiny import TINY, tiny_model, tiny_tokenizer  # noqa: F401  (bk.tiny_model, models.TINY)
from .twins import shape_twin  # noqa: F401  (bk.model.load.shape_twin)


def load_model(name: str = "auto", device: str = "auto", dtype: str | torch.dtype = "auto") -> LM:
    """Load a language model for black-box tuning.

    name: ``"auto"`` or ``"smollm2-135m"`` (the embedded default, offline), a Hugging Face hub name
    or local folder of a masked LM (RoBERTa, BERT) or causal LM (GPT-2, Llama family), or
    ``"tiny-roberta"``, ``"tiny-bert"``, ``"tiny-llama"``, ``"tiny-gpt2"`` (random, for tests).
    Weights load from safetensors only; no remote code runs.
    """
    if not isinstance(name, (str, Path)):
        raise ValueError(f"name must be a model name or folder (a string), not {type(name).__name__}.")
    name = str(name)
    if name.startswith("tiny-"):
        return tiny_model(name.removeprefix("tiny-"))
    dev = pick_device(device)
    dt = pick_dtype(dev, dtype)
    t0 = time.perf_counter()
    if name in ("auto", EMBEDDED):
        path, label = embedded_dir(), EMBEDDED
    else:
        path, label = name, name
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    kwargs = dict(trust_remote_code=False)
    hf_logging.disable_progress_bar()  # a 1-second load needs no progress bar
    try:
        try:  # a cached or local copy first: no network round trips
            config = AutoConfig.from_pretrained(path, local_files_only=True, **kwargs)
            local = True
        except OSError:
            if Path(str(path)).expanduser().is_dir() or not hub_reachable():  # a local folder: no hub to ask
                raise
            config = AutoConfig.from_pretrained(path, **kwargs)
            local = False
        family = family_of(config)
        cls = AutoModelForMaskedLM if family == "mlm" else AutoModelForCausalLM
        tok = AutoTokenizer.from_pretrained(path, local_files_only=local, **kwargs)
        model = cls.from_pretrained(path, dtype=dt, use_safetensors=True, local_files_only=local, **kwargs)
    except (OSError, ValueError) as err:
        folder = folder_problem(path) if name not in ("auto", EMBEDDED) else None
        if folder:
            raise ModelNotAvailableError(f"Could not load model {name!r}: {folder} ({type(err).__name__}: "
                                         f"{str(err).splitlines()[0][:200] if str(err) else ''})") from None
        raise ModelNotAvailableError(
            f"Could not load model {name!r}: it is not a local folder, not in the Hugging Face cache, and "
            f"the hub could not be reached or has no safetensors weights for it ({type(err).__name__}).\n"
            f"Offline, use the embedded default: bk.load_model() (SmolLM2-135M-Instruct), or pass a local "
            f"folder. Online, check the name on https://huggingface.co/models.") from None
    finally:
        hf_logging.enable_progress_bar()
    model.to(dev)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return LM(model, tok, family, label, load_seconds=time.perf_counter() - t0)
