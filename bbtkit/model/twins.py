"""Shape twins: the papers' models with their real dimensions and random weights, built offline.

No package here holds RoBERTa-large's weights, so the papers' accuracies cannot be reproduced offline;
their *speed* can, because speed depends on shapes, not on weights. ``shape_twin("roberta-large")``
builds RoBERTa-large's architecture from a config (24 layers, hidden size 1024, 16 heads, FFN 4096,
vocabulary 50,265, 514 positions) with random weights, and a tokenizer that gives realistic lengths:

* RoBERTa twins: the embedded model's byte-level BPE (SmolLM2's, 49,152 tokens learnt on web text, as
  RoBERTa's 50k were) with RoBERTa's special tokens and ``<s> … </s>`` framing;
* BERT twins: an uncased WordPiece of BERT's 30,522 tokens, learnt once from the course's benchmark text
  (the data directory) and cached.

Accuracy on a twin means nothing; seconds per call on it are the real thing.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .lm import LM
from ..runtime import cache_dir, pick_device, pick_dtype

_ROBERTA = dict(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)
_BERT = dict(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12)
SHAPES = {  # name -> (architecture, config fields): the published configs' dimensions
    "roberta-large": ("roberta", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                      intermediate_size=4096, **_ROBERTA)),
    "roberta-base": ("roberta", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                     intermediate_size=3072, **_ROBERTA)),
    "bert-large-uncased": ("bert", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                        intermediate_size=4096, **_BERT)),
    "bert-base-uncased": ("bert", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                       intermediate_size=3072, **_BERT)),
}


def shape_twin(name: str = "roberta-large", *, device: str = "auto", dtype: str | torch.dtype = "auto",
               seed: int = 0, layers: int | None = None) -> LM:
    """A model with ``name``'s real shapes and random weights (see the module docstring), offline.

    layers: fewer layers than the original (tests); every other dimension stays the original's."""
    if name not in SHAPES:
        raise ValueError(f"No shape twin of {name!r}; the twins are {', '.join(SHAPES)}. For a model of your own "
                         "shape, build its config with random weights: AutoModelForMaskedLM.from_config(config).")
    from transformers import BertConfig, BertForMaskedLM, RobertaConfig, RobertaForMaskedLM

    arch, dims = SHAPES[name]
    if layers is not None:
        if not 1 <= int(layers) <= dims["num_hidden_layers"]:
            raise ValueError(f"layers must be 1..{dims['num_hidden_layers']} for {name}, not {layers}.")
        dims = {**dims, "num_hidden_layers": int(layers)}
    tok = twin_tokenizer(arch)
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    config_cls, model_cls = (RobertaConfig, RobertaForMaskedLM) if arch == "roberta" else (BertConfig, BertForMaskedLM)
    dev = pick_device(device)
    dt = pick_dtype(dev, dtype)
    torch.manual_seed(seed)
    with torch.device(dev):  # weights drawn where they will live: no copy of a 1.4 GB model
        model = model_cls(config_cls(**dims, **ids, attn_implementation="sdpa"))
    model.to(dt)
    return LM(model, tok, "mlm", f"twin-{name}" + ("" if layers is None else f"-{layers}layers"))


def twin_tokenizer(arch: str):
    """The tokenizer of a twin: "roberta" (byte-level BPE, RoBERTa's specials) or "bert" (uncased WordPiece)."""
    from transformers import PreTrainedTokenizerFast

    if arch == "roberta":
        return PreTrainedTokenizerFast(tokenizer_object=_roberta_core(), bos_token="<s>", eos_token="</s>",
                                       cls_token="<s>", sep_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                       mask_token="<mask>")
    if arch == "bert":
        return PreTrainedTokenizerFast(tokenizer_object=_bert_core(), cls_token="[CLS]", sep_token="[SEP]",
                                       pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]")
    raise ValueError(f"arch must be 'roberta' or 'bert', not {arch!r}.")


def _roberta_core():
    """SmolLM2's BPE with RoBERTa's ids for its specials: <s> 0, <pad> 1, </s> 2, <unk> 3 (they take the
    places of four of SmolLM2's own specials, which no text contains) and <mask> after the vocabulary."""
    from tokenizers import Tokenizer, processors

    from .embedded import embedded_dir

    doc = json.loads((embedded_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    renamed = {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>"}
    vocab = doc["model"]["vocab"]
    for tok in doc["added_tokens"]:
        if tok["id"] in renamed:
            del vocab[tok["content"]]
            tok["content"] = renamed[tok["id"]]
            vocab[tok["content"]] = tok["id"]
    doc["added_tokens"].append({"id": len(vocab), "content": "<mask>", "single_word": False, "lstrip": True,
                                "rstrip": False, "normalized": False, "special": True})
    core = Tokenizer.from_str(json.dumps(doc))
    core.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                        special_tokens=[("<s>", 0), ("</s>", 2)])
    return core


def _bert_core():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    path = cache_dir() / "twins" / "bert-wordpiece-uncased.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece()
    core.train_from_iterator(_benchmark_text(), trainers.WordPieceTrainer(vocab_size=30522, special_tokens=specials,
                                                                          show_progress=False))
    c, s = core.token_to_id("[CLS]"), core.token_to_id("[SEP]")
    core.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                        special_tokens=[("[CLS]", c), ("[SEP]", s)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    core.save(str(tmp))
    tmp.replace(path)  # atomic: a cached tokenizer is whole or absent
    return core


def _benchmark_text():
    """Every text field of every task's train.jsonl under the data directory."""
    from ..data.splits import data_dir

    files = sorted(Path(data_dir()).glob("*/train.jsonl"))
    if not files:
        raise FileNotFoundError(f"The BERT twin's WordPiece is learnt once from the benchmark text, and {data_dir()} "
                                "has no */train.jsonl; set BBTKIT_DATA to the course's data folder.")
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield " ".join(v for v in json.loads(line).values() if isinstance(v, str))
