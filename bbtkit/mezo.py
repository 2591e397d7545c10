"""MeZO (Malladi et al., 2023): zeroth-order SGD on a model's own weights, with forward passes only.

This chapter opens the black box: MeZO needs the weights, not an API. What it keeps from the rest of
the course is the estimator: the same ``zo.ZO`` optimizer, whose directions are seeds, drives the
weights through ``TensorParams``, which perturbs them in place, one tensor at a time, with noise
regenerated from the seed and never stored:

    theta += eps z; L+ ; theta -= 2 eps z; L- ; theta += eps z; theta -= lr ((L+ - L-) / 2 eps) z

so memory stays at inference level, and the whole fine-tune is a list of (seed, scalar) pairs. A run
leaves the model as it found it: the updates are undone at the end (the weights come back within
fp32 rounding; see the tests), and ``applied(model, res)`` applies a saved run again.

``params``: ``"all"`` (every weight), ``"lora"`` (adapters on the query and value projections, as
MeZO's LoRA) or ``"prefix"`` (here: a deep prompt added at the template tokens in every layer, as
BBTv2's; MeZO's prefix tuning trains key/value prefixes instead). ``run_backprop`` is the reference:
the same tensors, batches and loss, trained with Adam and backpropagation.
"""
from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import whitebox
from .api import BlackBoxLM, evaluate
from .loop import tune
from .objectives import candidate_losses
from .results import Result
from .runtime import set_seed
from .tasks import get_task
from .zo import FORMS, METHODS, ZO

PARAMS = ("all", "lora", "prefix")


class TensorParams:
    """Named tensors moved in place along seeded directions (see ``zo``): for tensor k, the noise of
    seed s is the k-th draw of a generator seeded s, as in MeZO's code. Updates are logged, so that
    they can be undone, saved and applied again."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors, self.log = dict(tensors), []
        self.applied = 0  # how many logged updates the tensors hold now (rewind moves it back)

    def _add(self, direction, scale: float, decay: float = 0.0) -> None:
        """theta <- (1 - decay) theta + scale * v (decay spares biases and norms, as MeZO)."""
        device = next(iter(self.tensors.values())).device
        gens = [(torch.Generator(device=device).manual_seed(int(s)), w) for s, w in direction]
        for name, p in self.tensors.items():
            z = None
            for g, w in gens:
                r = torch.randn(p.shape, generator=g, device=p.device, dtype=p.dtype)
                z = r.mul_(w) if z is None else z.add_(r, alpha=w)
            if decay and not ("bias" in name or "norm" in name.lower()):
                p.mul_(1.0 - decay)
            p.add_(z, alpha=scale)
            del z

    def candidates(self, perturbations) -> list:
        return list(perturbations)  # evaluated in place, one at a time, by ``losses``

    def losses(self, perturbations, loss) -> np.ndarray:
        """loss() at each perturbed point; consecutive points along one direction move by the difference
        (MeZO's +eps, -2 eps, +eps); the tensors are restored before returning."""
        out, held = [], None
        try:
            for d, scale in perturbations:
                if held is not None and held[0] == d:
                    self._add(d, scale - held[1])
                else:
                    if held is not None:
                        self._add(held[0], -held[1])
                    self._add(d, scale)
                held = (d, scale)
                out.append(loss())
        finally:
            if held is not None:
                self._add(held[0], -held[1])
        return np.array(out)

    def update(self, direction, coef: float, decay: float = 0.0) -> None:
        self._add(direction, -coef, decay)
        self.log.append({"direction": [list(p) for p in direction], "coef": coef, "decay": decay})
        self.applied = len(self.log)

    def rewind(self, k: int) -> None:
        """Undo the applied updates after the first k, newest first."""
        for entry in reversed(self.log[k:self.applied]):
            self.undo(entry)
        self.applied = min(k, self.applied)

    def redo(self, entry: dict) -> None:
        """Apply one logged update again (to the tensors it was logged from, at their start)."""
        self._add(tuple(tuple(p) for p in entry["direction"]), -entry["coef"], entry["decay"])

    def undo(self, entry: dict) -> None:
        """The inverse of one logged update: theta <- (theta + coef v) / (1 - decay)."""
        d = tuple(tuple(p) for p in entry["direction"])
        self._add(d, entry["coef"])
        if entry["decay"]:
            for name, p in self.tensors.items():
                if not ("bias" in name or "norm" in name.lower()):
                    p.div_(1.0 - entry["decay"])

    def current(self) -> np.ndarray:
        return np.array([float(len(self.log))])  # the weights are the start plus the logged steps


@dataclass(frozen=True)
class MeZOConfig:
    """One MeZO run. budget counts forward passes on training batches (2 per ZO-SGD step)."""

    params: str = "all"            # "all" | "lora" | "prefix"
    optimizer: str = "zo-sgd"      # the estimator (zo.METHODS); MeZO is "zo-sgd"
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
    adam_lr: float | None = None   # the backprop reference's learning rate (None: per params, see adam_default)
    seed: int = 42

    def __post_init__(self) -> None:
        checks = [(self.params in PARAMS, f"params must be one of {PARAMS}, not {self.params!r}"),
                  (self.optimizer in METHODS, f"optimizer must be one of {METHODS}, not {self.optimizer!r}"),
                  (self.form in FORMS, f"form must be one of {FORMS}"),
                  (self.eps > 0 and self.lr >= 0, "eps must be positive and lr non-negative"),
                  (self.budget >= 2, "budget must allow one step (2 forward passes)"),
                  (self.batch_size >= 1 and self.lora_rank >= 1 and self.n_prompt_tokens >= 1,
                   "batch_size, lora_rank and n_prompt_tokens must be at least 1"),
                  (self.loss in ("ce", "hinge"), "loss must be 'ce' or 'hinge' (a smooth loss for the estimate)"),
                  (self.eval_every >= 1, "eval_every must be at least 1")]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"MeZOConfig: {message}.")

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


def run_mezo(model, task, split, cfg: MeZOConfig | None = None, *, display: bool = True, callback=None,
             evaluate_test: bool = True) -> Result:
    """MeZO on split.train (forward passes only, no autograd), selected on split.dev, scored on split.test.

    Returns a :class:`Result` whose ``extra["updates"]`` hold the selected run's steps (seeds and
    scalars); ``applied(model, res)`` applies them again. The model is left as it was."""
    cfg, task = cfg or MeZOConfig.cpu_quick(), get_task(task)
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    fw = whitebox.encode(model, task, split.train, cfg.n_prompt_tokens if cfg.params == "prefix" else 0,
                         cfg.prompt_position)
    with trainable(model, cfg) as (tensors, prompt), torch.inference_mode():
        params = TensorParams(tensors)
        opt = ZO(params, cfg.optimizer, eps=cfg.eps, lr=cfg.lr, samples=cfg.samples, top=cfg.top, form=cfg.form,
                 weight_decay=cfg.weight_decay, seed=cfg.seed)

        labels = torch.tensor([ex.label for ex in split.train])

        def loss() -> float:
            rows = batch_rows(cfg, opt.steps, fw.batch)
            logits = whitebox.answer_logits(model, fw, rows, prompt)
            return float(candidate_losses(logits[None], labels[rows], cfg.loss, task)[0][0])

        dev = lambda _step: evaluate(model, task, split.dev, prompt, position=fw.position)  # noqa: E731
        try:  # whatever happens, the user's model comes back as it was
            trace = tune(lambda X: params.losses(X, loss), opt, budget=cfg.budget, dev=dev,
                         eval_every=cfg.eval_every, callback=callback, display=display,
                         desc=f"mezo ({cfg.params}) {task.name}")
            best = int(trace.best_z[0])
            params.rewind(best)  # back to the selected step
            res = Result(method="mezo", task=task, model=model.name, config=asdict(cfg), z=np.array([[best]]),
                         projections=[], n_tokens=0, hidden=model.hidden_size, layers=[], num_layers=model.num_layers,
                         position=fw.position, history=trace.history,
                         dev_metric=trace.best_dev if np.isfinite(trace.best_dev) else None,
                         api_calls=trace.calls, stop=trace.stop,
                         extra={"params": cfg.params, "updates": params.log[:best], "trained_tensors": len(tensors),
                                "trained_numbers": int(sum(t.numel() for t in tensors.values()))})
            if evaluate_test and not trace.interrupted:
                res.test_metric = evaluate(model, task, split.test, prompt, position=fw.position)
        finally:
            params.rewind(0)
    res.seconds = time.perf_counter() - t0
    return res


@contextmanager
def applied(model, res: Result):
    """The model with a saved MeZO run applied (its logged updates); yields the prompt (prefix) or None.
    ``bk.evaluate(model, task, examples, prompt)`` inside the block scores the fine-tuned model."""
    cfg = MeZOConfig(**res.config)
    with trainable(model, cfg) as (tensors, prompt), torch.inference_mode():
        params = TensorParams(tensors)
        log = res.extra["updates"]
        for entry in log:
            params.redo(entry)
        try:
            yield prompt
        finally:
            for entry in reversed(log):
                params.undo(entry)


def run_backprop(model, task, split, cfg: MeZOConfig | None = None, *, steps: int | None = None,
                 display: bool = False) -> Result:
    """The white-box reference: the same tensors, batches and loss as ``run_mezo``, trained with Adam and
    backpropagation for ``steps`` (default: as many steps as MeZO takes), selected on dev. The model's
    tensors are restored afterwards (a copy is kept: Adam needs memory anyway)."""
    cfg, task = cfg or MeZOConfig.cpu_quick(), get_task(task)
    steps = steps or cfg.budget // 2
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    fw = whitebox.encode(model, task, split.train, cfg.n_prompt_tokens if cfg.params == "prefix" else 0,
                         cfg.prompt_position)
    labels = torch.tensor([ex.label for ex in split.train])
    history, best_dev, best_step = [], -np.inf, 0
    with trainable(model, cfg) as (tensors, prompt), ExitStack() as stack:
        original = {n: t.detach().clone() for n, t in tensors.items()}
        leaves = [p for p in model.model.parameters()] if cfg.params == "all" else list(tensors.values())
        stack.callback(_restore, tensors, original)
        stack.enter_context(whitebox.weights_requiring_grad(model, cfg.params == "all"))
        for t in leaves:
            t.requires_grad_(True)
        adam = torch.optim.Adam(leaves, lr=cfg.adam_default, weight_decay=cfg.weight_decay)
        best = {n: t.detach().clone() for n, t in tensors.items()}
        every = max(1, cfg.eval_every // 2)
        for step in range(1, steps + 1):
            rows = batch_rows(cfg, step - 1, fw.batch)
            logits = whitebox.answer_logits(model, fw, rows, prompt)
            loss = torch.nn.functional.cross_entropy(logits, labels[rows])
            adam.zero_grad(set_to_none=True)
            loss.backward()
            adam.step()
            row = {"calls": step, "best_loss": float(loss.detach()), "dev_metric": None}
            if step % every == 0 or step == steps:
                with torch.no_grad():
                    row["dev_metric"] = evaluate(model, task, split.dev, prompt, position=fw.position)
                if row["dev_metric"] > best_dev:
                    best_dev, best_step = row["dev_metric"], step
                    best = {n: t.detach().clone() for n, t in tensors.items()}
            history.append(row)
        adam.zero_grad(set_to_none=True)
        for t in leaves:
            t.requires_grad_(False)
        _restore(tensors, best)
        with torch.no_grad():
            test = evaluate(model, task, split.test, None if prompt is None else prompt.detach(), position=fw.position)
    cfg_dict = {**asdict(cfg), "steps": steps}
    return Result(method="backprop", task=task, model=model.name, config=cfg_dict, z=np.array([[best_step]]),
                  projections=[], n_tokens=0, hidden=model.hidden_size, layers=[], num_layers=model.num_layers,
                  position=fw.position, history=history, dev_metric=best_dev, test_metric=test, api_calls=steps,
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


def _restore(tensors: dict, values: dict) -> None:
    with torch.no_grad():
        for n, t in tensors.items():
            t.copy_(values[n])


__all__ = ["MeZOConfig", "PARAMS", "TensorParams", "applied", "prompt_objective", "run_backprop", "run_mezo"]
