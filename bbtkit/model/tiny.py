"""Tiny random models for tests: offline, fast, fp32, one per family (RoBERTa, BERT, Llama, GPT-2).

Built from a config with random weights and a word-level tokenizer over a small built-in vocabulary,
so that every forward-pass test runs in milliseconds and needs no download.
"""
from __future__ import annotations

import torch

from .lm import LM

TINY = ("roberta", "bert", "llama", "gpt2")  # the tiny architectures, one per family

_TINY_WORDS = (
    "the a an and or but not no yes maybe of to in on at for with by from as is was are were be been it "
    "this that these those i you he she we they my your his her our their what which who how why when "
    "where there here all some any one two three more most very so too just only also than then now "
    "good great bad terrible awful fine best worst love hate like movie film story plot actor acting "
    "funny boring fun dull beautiful ugly positive negative review sentiment news world sports business "
    "tech science company education artist athlete office transportation building natural village "
    "animal plant album written category question answer sentence text topic label true false "
    "entailment neutral contradiction same different duplicate equivalent mean means do does did "
    "can could will would should may might must have has had get got make made go went see saw "
    "man woman people person dog cat car house city country game team player market price stock "
    ". , ? ! : ; ' \" ( ) [ ] - \n"
).split(" ")


def tiny_tokenizer(family: str):
    """A word-level tokenizer over a small built-in vocabulary (no download); unknown words -> <unk>."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<mask>"]
    words = list(dict.fromkeys(w for w in _TINY_WORDS if w.strip()))
    vocab = {w: i for i, w in enumerate(specials + words)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    if family == "mlm":
        core.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        mask_token="<mask>", cls_token="<s>", sep_token="</s>")


def tiny_model(arch: str = "roberta", seed: int = 0, layers: int = 2, hidden: int = 32) -> LM:
    """A tiny randomly initialised model built from a config: offline, fast, fp32, for exact tests."""
    from transformers import (BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                              LlamaForCausalLM, RobertaConfig, RobertaForMaskedLM)

    if arch not in TINY:
        raise ValueError(f"Unknown tiny architecture {arch!r}; choose one of {TINY}.")
    family = "mlm" if arch in ("roberta", "bert") else "causal"
    tok = tiny_tokenizer(family)
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                  eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    if arch == "roberta":
        cfg = RobertaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                            intermediate_size=2 * hidden, max_position_embeddings=258, type_vocab_size=1,
                            **common)
        model = RobertaForMaskedLM(cfg)
    elif arch == "bert":
        cfg = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                         intermediate_size=2 * hidden, max_position_embeddings=256, **common)
        model = BertForMaskedLM(cfg)
    elif arch == "llama":
        cfg = LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                          num_key_value_heads=2, intermediate_size=2 * hidden, max_position_embeddings=256,
                          tie_word_embeddings=True, **common)
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPT2Config(n_embd=hidden, n_layer=layers, n_head=2, n_positions=256, **common)
        model = GPT2LMHeadModel(cfg)
    return LM(model.float(), tok, family, f"tiny-{arch}")
