"""MeZO (Malladi et al., 2023): zeroth-order SGD on a model's own weights, with forward passes only.

This chapter opens the black box: MeZO needs the weights, not an API. What it keeps from the rest of
the course is the estimator: the same ``zo.ZO`` optimizer, whose directions are seeds, drives the
weights through ``TensorParams``, which perturbs them in place, one tensor at a time, with noise
regenerated from the seed and never stored:

    theta += eps z; L+ ; theta -= 2 eps z; L- ; theta += eps z; theta -= lr ((L+ - L-) / 2 eps) z

so the perturbations take no memory beyond inference, and the whole fine-tune is a list of (seed, scalar)
pairs. A run leaves the model exactly as it found it, whatever ends it (the end of the budget, an error,
Ctrl-C): moving back along a direction undoes a move only up to rounding, so a copy of the tuned tensors
is kept in host memory for the run (``tensor_params.kept``) and written back at the end. On a GPU that
copy takes host memory, not device memory; on a CPU it is one more copy of the tuned weights in RAM.
``applied(model, res)`` applies a saved run again, and gives the model back the same way.

``params``: ``"all"`` (every weight), ``"lora"`` (adapters on the query and value projections, as
MeZO's LoRA) or ``"prefix"`` (here: a deep prompt added at the template tokens in every layer, as
BBTv2's; MeZO's prefix tuning trains key/value prefixes instead). ``run_backprop`` is the reference:
the same tensors, batches and loss, trained with Adam and backpropagation.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import access as whitebox
from ..api.blackbox import BlackBoxLM, evaluate
from ..fields import check_fields
from ..tuning.descent import descend
from ..tuning.loop import tune
from ..tuning.objectives import candidate_losses
from ..tuning.result_builder import build_result
from ..tuning.results import Result
from ..runtime import set_seed
from ..data.tasks import get_task
from .tensor_params import TensorParams, copy_into, kept
from ..optim.zo import FORMS, OPTIMIZERS, ZO

PARAMS = ("all", "lora", "prefix")


@dataclass(frozen=True)
class MeZOConfig:
    """One MeZO run. budget counts forward passes on training batches (2 per ZO-SGD step)."""

    params: str = "all"            # "all" | "lora" | "prefix"
    optimizer: str = "zo-sgd"      # the estimator (zo.OPTIMIZERS); MeZO is "zo-sgd"
    eps: float = 1e-3
    lr: float = 1e-6
    budget: int = 20000            # forward passes (the MeZO paper: 100k steps for RoBERTa-large)
    batch_size: int = 16           # training examples per step (both passes of a step use the same batch)
    weight_decay: float = 0.0
    samples: int = 8
    top: float = 0.5
    form: str = "paper"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    n_prompt_tokens: int = 3       # prefix: template tokens prompted in every layer
    loss: str = "ce"
    prompt_position: str = "auto"
    eval_every: int = 50           # dev metric every this many forward passes; the best is kept
    select_se: float = 0.0         # a tuned z must beat the start on dev by > this many standard errors (bbtkit.tuning.selection)
    adam_lr: float | None = None   # the backprop reference's learning rate (None: per params, see adam_default)
    seed: int = 42

    def __post_init__(self) -> None:
        check_fields(self, positive=("eps", "lora_alpha", "adam_lr"), nonneg=("lr", "weight_decay", "select_se"),
                     at_least={"budget": 2, "batch_size": 1, "samples": 1, "lora_rank": 1, "n_prompt_tokens": 1,
                               "eval_every": 1},
                     between={"top": (0.0, 1.0)},
                     choices={"params": PARAMS, "optimizer": OPTIMIZERS, "form": FORMS, "loss": ("ce", "hinge"),
                              "prompt_position": ("auto", "before", "after")})
        per_step = 2 if self.optimizer == "zo-sgd" else (4 if self.form == "code" else self.samples + 2)
        if self.budget < per_step:
            raise ValueError(f"MeZOConfig: budget ({self.budget}) must allow one step: {per_step} forward passes "
                             f"with optimizer={self.optimizer!r}; raise budget.")
        if self.lr * self.weight_decay >= 1:
            raise ValueError(f"MeZOConfig: weight_decay ({self.weight_decay}) times lr ({self.lr}) is the share of "
                             "each weight a step removes and must be below 1; lower weight_decay.")

    @property
    def adam_default(self) -> float:
        return self.adam_lr or {"all": 1e-5, "lora": 1e-3, "prefix": 1e-2}[self.params]

    @classmethod
    def paper(cls, seed: int = 42, params: str = "all") -> "MeZOConfig":
        """MeZO's suggestions (OPT-13B, batch 16): full weights lr 1e-6, eps 1e-3; LoRA lr 5e-5,
        eps 1e-2; prefix lr 1e-2, eps 1e-1; 20,000 steps as in its OPT runs."""
        lr, eps = {"all": (1e-6, 1e-3), "lora": (5e-5, 1e-2), "prefix": (1e-2, 1e-1)}[params]
        return cls(params=params, lr=lr, eps=eps, budget=40000, eval_every=4000, seed=seed)

    @classmethod
    def cpu_quick(cls, seed: int = 42, params: str = "all") -> "MeZOConfig":
        """SST-2 16-shot on the embedded model: 50 steps of batch 16 (about 4 minutes on 2 cores, where a
        forward pass over 16 examples on all weights takes about 2 s in fp32). MeZO's learning rates, raised
        tenfold for so few steps; prefix: MeZO's prefix setting."""
        lr, eps = {"all": (1e-5, 1e-3), "lora": (5e-4, 1e-2), "prefix": (1e-2, 1e-1)}[params]
        return cls(params=params, lr=lr, eps=eps, budget=100, eval_every=20, seed=seed)


@contextmanager
def trainable(model, cfg: MeZOConfig):
    """The tensors to tune and the prompt that goes with them: every weight, fresh LoRA adapters
    (removed on exit), or a zero deep prompt (the manual prompt). Yields (tensors, prompt or None)."""
    if cfg.params == "all":
        yield {n: p.data for n, p in model.model.named_parameters()}, None
    elif cfg.params == "lora":
        with whitebox.lora(model, cfg.lora_rank, cfg.lora_alpha, seed=cfg.seed) as tensors:
            yield tensors, None
    else:
        prompt = torch.zeros(model.num_layers, cfg.n_prompt_tokens, model.hidden_size, device=model.device,
                             dtype=model.dtype)
        yield {"prefix": prompt}, prompt


def batch_rows(cfg: MeZOConfig, step: int, n: int) -> torch.Tensor:
    """The training rows of one step: a sample without replacement, seeded by (seed, step)."""
    rng = np.random.default_rng([cfg.seed, step])
    return torch.as_tensor(np.sort(rng.choice(n, size=min(cfg.batch_size, n), replace=False)))


def encode(model, task, split, cfg: MeZOConfig):
    """split.train tokenised once for the white-box forward (with the prefix's placeholders when tuned)."""
    return whitebox.encode(model, task, split.train, cfg.n_prompt_tokens if cfg.params == "prefix" else 0,
                           cfg.prompt_position)


def train_loss(model, task, split, cfg: MeZOConfig, fw, prompt, step):
    """loss() -> the training loss of the current weights on the batch of step() (a float, no autograd)."""
    labels = torch.tensor([ex.label for ex in split.train])

    def loss() -> float:
        rows = batch_rows(cfg, step(), fw.batch)
        logits = whitebox.answer_logits(model, fw, rows, prompt)
        return float(candidate_losses(logits[None], labels[rows], cfg.loss, task)[0][0])
    return loss


def run_mezo(model, task, split, cfg: MeZOConfig | None = None, *, display: bool = True, callback=None,
             evaluate_test: bool = True) -> Result:
    """MeZO on split.train (forward passes only, no autograd), selected on split.dev, scored on split.test.

    Returns a :class:`Result` whose ``extra["updates"]`` hold the selected run's steps (seeds and
    scalars); ``applied(model, res)`` applies them again. The model is left exactly as it was (bit for
    bit, however the run ends): a copy of the tuned tensors is kept in host memory during the run."""
    cfg, task = cfg or MeZOConfig.cpu_quick(), get_task(task)
    set_seed(cfg.seed)
    t0, fw = time.perf_counter(), encode(model, task, split, cfg)
    with trainable(model, cfg) as (tensors, prompt), kept(tensors), torch.inference_mode():
        params = TensorParams(tensors)
        opt = ZO(params, cfg.optimizer, eps=cfg.eps, lr=cfg.lr, samples=cfg.samples, top=cfg.top, form=cfg.form,
                 weight_decay=cfg.weight_decay, seed=cfg.seed)
        loss = train_loss(model, task, split, cfg, fw, prompt, lambda: opt.steps)
        dev = lambda _step: evaluate(model, task, split.dev, prompt, position=fw.position)  # noqa: E731
        dev.examples = split.dev  # the dev set's size sets the selection rule's standard error
        trace = tune(lambda X: params.losses(X, loss), opt, budget=cfg.budget, dev=dev, eval_every=cfg.eval_every,
                     callback=callback, display=display, desc=f"mezo ({cfg.params}) {task.name}",
                     select_se=cfg.select_se)
        best = int(trace.best_z[0])
        params.rewind(best)  # back to the selected step (up to rounding; kept() restores the start exactly)
        res = build_result("mezo", model, task, cfg, z=np.array([[best]]), position=fw.position, history=trace.history,
                           calls=trace.calls, stop=trace.stop, dev=trace.best_dev, selection=trace.selection,
                           extra={"params": cfg.params, "updates": params.log[:best], "trained_tensors": len(tensors),
                                  "trained_numbers": int(sum(t.numel() for t in tensors.values()))})
        if evaluate_test and not trace.interrupted:
            res.test_metric = evaluate(model, task, split.test, prompt, position=fw.position)
    res.seconds = time.perf_counter() - t0
    return res


@contextmanager
def applied(model, res: Result):
    """The model with a saved MeZO run applied (its logged updates); yields the prompt (prefix) or None.
    ``bk.evaluate(model, task, examples, prompt)`` inside the block scores the fine-tuned model. The
    tuned tensors are copied (host memory) on entry and written back on exit: the model comes back exactly."""
    cfg = MeZOConfig(**res.config)
    with trainable(model, cfg) as (tensors, prompt), kept(tensors), torch.inference_mode():
        params = TensorParams(tensors)
        for entry in res.extra["updates"]:
            params.redo(entry)
        yield prompt


def adam_steps(model, task, split, cfg: MeZOConfig, fw, prompt, tensors, leaves, steps: int, desc: str | None = None):
    """Adam on leaves for steps, dev every ``eval_every // 2`` steps (``tuning.descent``). Returns (history,
    best dev, its step, a copy of the tensors at that step)."""
    labels = torch.tensor([ex.label for ex in split.train])
    adam = torch.optim.Adam(leaves, lr=cfg.adam_default, weight_decay=cfg.weight_decay)

    def step(i: int) -> dict:
        rows = batch_rows(cfg, i - 1, fw.batch)
        loss = torch.nn.functional.cross_entropy(whitebox.answer_logits(model, fw, rows, prompt), labels[rows])
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()
        return {"calls": i, "best_loss": float(loss.detach())}

    found = descend(step, steps, score=lambda: evaluate(model, task, split.dev, prompt, position=fw.position),
                    snapshot=lambda: {n: t.detach().clone() for n, t in tensors.items()},
                    eval_every=max(1, cfg.eval_every // 2), desc=desc)
    adam.zero_grad(set_to_none=True)
    return found.history, found.best_dev, found.best_step, found.best


def run_backprop(model, task, split, cfg: MeZOConfig | None = None, *, steps: int | None = None,
                 display: bool = False) -> Result:
    """The white-box reference: the same tensors, batches and loss as ``run_mezo``, trained with Adam and
    backpropagation for ``steps`` (default: as many steps as MeZO takes), selected on dev. The model's
    tensors are restored afterwards, exactly (a copy is kept, as by ``run_mezo``)."""
    cfg, task = cfg or MeZOConfig.cpu_quick(), get_task(task)
    steps = steps or cfg.budget // 2
    set_seed(cfg.seed)
    t0, fw = time.perf_counter(), encode(model, task, split, cfg)
    with trainable(model, cfg) as (tensors, prompt), kept(tensors), \
            whitebox.weights_requiring_grad(model, cfg.params == "all"):
        leaves = list(model.model.parameters()) if cfg.params == "all" else list(tensors.values())
        try:
            for t in leaves:
                t.requires_grad_(True)
            history, best_dev, best_step, best = adam_steps(model, task, split, cfg, fw, prompt, tensors, leaves, steps,
                                                               desc=f"Adam {task.name}" if display else None)
        finally:
            for t in leaves:
                t.requires_grad_(False)
        copy_into(tensors, best)
        with torch.no_grad():
            test = evaluate(model, task, split.test, None if prompt is None else prompt.detach(), position=fw.position)
    return build_result("backprop", model, task, cfg, config={**asdict(cfg), "steps": steps}, z=np.array([[best_step]]),
                        position=fw.position, history=history, dev=best_dev, test=test, calls=steps,
                        seconds=time.perf_counter() - t0, stop={"steps": steps},
                        extra={"params": cfg.params, "optimizer": "adam", "lr": cfg.adam_default})


def prompt_objective(model, task, examples, n_tokens: int = 3, position: str = "auto"):
    """A shallow prompt's cross-entropy on examples, as a function of its numbers, and its true gradient:
    ``f(X)`` -> losses (pop,) of the prompts X (pop, n_tokens * hidden) through the API (one batch),
    ``grad(x)`` -> (n_tokens * hidden,) by one backward pass through the same forward, opened up. For
    measuring how well a zeroth-order estimate aligns with the gradient."""
    task = get_task(task)
    fw = whitebox.encode(model, task, examples, n_tokens, position)
    api = BlackBoxLM(model, task, examples, position=fw.position)
    labels, rows = torch.tensor([ex.label for ex in examples]), torch.arange(len(examples))
    shape = (n_tokens, model.hidden_size)

    def f(X) -> np.ndarray:
        X = np.atleast_2d(X)
        out = api(torch.as_tensor(X, dtype=torch.float32).view(len(X), *shape))
        return candidate_losses(out.logits, out.labels, "ce", task)[0].astype(float)

    def grad(x) -> np.ndarray:
        p = torch.tensor(np.asarray(x), dtype=torch.float32, requires_grad=True)
        torch.nn.functional.cross_entropy(whitebox.answer_logits(model, fw, rows, p.view(shape)), labels).backward()
        return p.grad.numpy().astype(float)

    return f, grad


__all__ = ["MeZOConfig", "PARAMS", "TensorParams", "applied", "prompt_objective", "run_backprop", "run_mezo"]
