"""The uniform view of a loaded language model that the rest of bbtkit works with (:class:`LM`).

Every model, the embedded default, a hub model, a tiny test model or a shape twin, is wrapped in
:class:`LM`: its tokenizer, its family (``"mlm"`` or ``"causal"``), the input embeddings, the list of
transformer layers, the hidden size, and how to turn the answer position's hidden state into label-word
logits. ``bbtkit.model.load`` loads models into it; ``bbtkit.model.tiny`` and ``bbtkit.model.twins`` build them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

# Architectures whose pre-training objective is masked-token prediction.
MLM_TYPES = {"roberta", "bert", "xlm-roberta", "camembert", "distilbert", "albert", "electra",
             "deberta", "deberta-v2", "modernbert"}


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


def family_of(config) -> str:
    return "mlm" if config.model_type in MLM_TYPES else "causal"

