"""IPL as the paper trains it (a white-box reference, ``IPLConfig(mode="gradient")``): the prompt
encoder (P = MLP(E), W_q and W_k with biases) trained with AdamW and a linear warm-up schedule by
backpropagation through the frozen model. It needs the model's weights, and says so by importing
``whitebox``; the black-box version is ``bbtkit.methods.ipl``.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from . import access as whitebox
from ..api.blackbox import BlackBoxLM, evaluate
from ..api.published import mean_embeddings
from ..tuning.descent import descend
from ..tuning.result_builder import build_result
from ..tuning.results import Result
from ..runtime import set_seed
from ..tuning.spaces import WeightedPrompt, relevance


class PromptEncoder(torch.nn.Module):
    """The paper's trainable parts: P = MLP(E) (an embedding through Linear-ReLU-Linear), W_q and W_k
    linear maps (H -> h) with biases. The MLP's last layer starts at zero, so step 0 is the manual
    prompt (the paper starts it at random)."""

    def __init__(self, n: int, hidden: int, head: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(n, hidden)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden))
        torch.nn.init.zeros_(self.mlp[2].weight)
        torch.nn.init.zeros_(self.mlp[2].bias)
        self.query, self.key = torch.nn.Linear(hidden, head), torch.nn.Linear(hidden, head)

    def parts(self):
        P = self.mlp(self.embedding.weight)
        return P, self.query.weight, self.query.bias, self.key.weight, self.key.bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(examples, H) mean embeddings -> (examples, n, H) weighted prompts."""
        P, Wq, bq, Wk, bk = self.parts()
        return (relevance(P[None], Wq[None], bq[None], Wk[None], bk[None], features)[0][..., None] * P)

    def snapshot(self) -> WeightedPrompt:
        with torch.no_grad():
            return WeightedPrompt(*(t.detach().clone() for t in self.parts()))


def run_gradient(model, task, split, cfg, *, display: bool, evaluate_test: bool) -> Result:
    """The paper's IPL: AdamW on the prompt encoder by backpropagation through the frozen model."""
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    fw = whitebox.encode(model, task, split.train, cfg.n_prompt_tokens, cfg.prompt_position)
    feats, labels = mean_embeddings(model, split.train), torch.tensor([ex.label for ex in split.train])
    dev_api = BlackBoxLM(model, task, split.dev, position=fw.position)
    enc = PromptEncoder(cfg.n_prompt_tokens, model.hidden_size, cfg.head_size).to(model.device)
    opt = torch.optim.AdamW(enc.parameters(), lr=cfg.lr, weight_decay=0.0)
    warm = max(1, int(cfg.warmup * cfg.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (cfg.steps - s) / max(1, cfg.steps - warm))))
    rng = np.random.default_rng(cfg.seed)

    def step(i: int) -> dict:
        rows = torch.as_tensor(np.sort(rng.choice(fw.batch, size=min(cfg.batch_size, fw.batch), replace=False)))
        prompts = enc(feats[rows].to(model.device)).to(model.dtype)
        logits = whitebox.answer_logits(model, fw, rows, prompts, per_example=True)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return {"calls": i, "best_loss": float(loss.detach())}

    def dev() -> float:  # the dev API, asked as the black-box IPL asks it (spaces.InstancePrompt)
        out = dev_api(enc(dev_api.input_embeddings())[None], per_example=True)
        return task.score(out.logits[0].argmax(-1).numpy(), dev_api.labels.numpy())

    with whitebox.weights_requiring_grad(model, False):  # the model is frozen; only the encoder learns
        found = descend(step, cfg.steps, score=dev, snapshot=enc.snapshot, eval_every=cfg.eval_every,
                        desc=f"IPL (gradient) {task.name}" if display else None)
    best, best_dev, best_step, history = found.best, found.best_dev, found.best_step, found.history
    res = build_result("ipl", model, task, cfg, z=best.flat()[None], n_tokens=cfg.n_prompt_tokens, layers=[0],
                       position=fw.position, history=history, dev=best_dev, stop={"steps": cfg.steps, "best_step": best_step},
                       extra={"space": "instance", "mode": "gradient", "head_size": cfg.head_size,
                              "examples_per_step": min(cfg.batch_size, fw.batch)})
    if evaluate_test:
        res.test_metric = evaluate(model, task, split.test, res.prompt, position=res.position)
    res.seconds = time.perf_counter() - t0
    return res


__all__ = ["PromptEncoder", "run_gradient"]
