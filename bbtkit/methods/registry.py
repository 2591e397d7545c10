"""The one registry of methods: ``METHODS[name]`` holds a method's label, config class and run function.

The leaderboard, the widgets and the benchmarks read this and nothing else, so a new method is one
module plus one line here. Every run function has the signature
``run(model, task, split, cfg, *, display=..., evaluate_test=...) -> Result``, and every config
class the presets ``cpu_quick(seed)`` and ``paper(seed)``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from .ajo import AJOConfig, paper_budget, run_ajo, run_feature_mlp
from .baselines import PromptConfig, run_in_context, run_manual
from .bbt import BBTConfig, run_bbt
from .bbtv2 import BBTv2Config, run_bbtv2
from .dfo_lora import DFOLoRAConfig, run_dfo_lora
from .evoprompt import EvoPromptConfig, run_evoprompt
from .ipl import IPLConfig, run_ipl
from .random_search import RandomSearchConfig, run_random_search
from .zo_sgd import ZOConfig, run_zo


@dataclass(frozen=True)
class Method:
    label: str                  # how tables and plots name it
    config: type                # its config dataclass (presets cpu_quick(seed), paper(seed))
    run: Callable               # run(model, task, split, cfg, *, display, evaluate_test) -> Result
    overrides: tuple = ()       # fields set on top of the presets, e.g. (("calibration", "champion"),)
    tunes: bool = True          # False for the rows that tune nothing (manual prompt, in-context)

    def preset(self, task: str, seed: int, paper: bool = False, budget: int | None = None):
        """cpu_quick(seed) or the paper preset (AJO's depends on the task), with overrides and a budget."""
        if not paper:
            cfg = self.config.cpu_quick(seed)
        elif self.config is AJOConfig:
            cfg = AJOConfig.paper(task, seed)
        else:
            cfg = self.config.paper(seed)
        changes = dict(self.overrides)
        if budget is not None and self.tunes:
            changes["budget"] = budget
        return dataclasses.replace(cfg, **changes) if changes else cfg


METHODS: dict[str, Method] = {
    "manual": Method("Manual prompt", PromptConfig, run_manual, tunes=False),
    "in_context": Method("In-context learning", PromptConfig, run_in_context, (("demonstrations_per_class", 1),), False),
    "feature_mlp": Method("Feature-MLP", AJOConfig, run_feature_mlp),
    "bbt": Method("BBT", BBTConfig, run_bbt),
    "bbt_de": Method("BBT (DE)", BBTConfig, run_bbt, (("optimizer", "DE"),)),
    "bbt_pso": Method("BBT (PSO)", BBTConfig, run_bbt, (("optimizer", "PSO"),)),
    "bbt_ngopt": Method("BBT (NGOpt)", BBTConfig, run_bbt, (("optimizer", "NGOpt"),)),
    "bbtv2": Method("BBTv2", BBTv2Config, run_bbtv2),
    "bbtv2_cal": Method("BBTv2 + calibration", BBTv2Config, run_bbtv2, (("calibration", "champion"),)),
    "ajo": Method("AJO", AJOConfig, run_ajo),
    "random": Method("Random search", RandomSearchConfig, run_random_search),
    "zo_sgd": Method("ZO-SGD", ZOConfig, run_zo),
    "zo_gv": Method("Prior-guided ZO", ZOConfig, run_zo, (("optimizer", "zo-gv"),)),
    "dfo_lora": Method("DFO-LoRA (CMA-ES)", DFOLoRAConfig, run_dfo_lora),
    "dfo_lora_fw": Method("DFO-LoRA (fireworks)", DFOLoRAConfig, run_dfo_lora, (("optimizer", "fireworks"),)),
    "ipl": Method("IPL (black-box)", IPLConfig, run_ipl),
    "evoprompt": Method("EvoPrompt (GA)", EvoPromptConfig, run_evoprompt),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; the registered methods are {', '.join(METHODS)}.")
    return METHODS[name]


__all__ = ["METHODS", "Method", "get_method", "paper_budget"]
