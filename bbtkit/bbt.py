"""Black-Box Tuning (Sun et al., ICML 2022): CMA-ES on z, a random projection A, p = p0 + A z.

The prompt has L x D numbers (tokens x hidden), far too many for a derivative-free optimiser.
BBT searches a d-dimensional z instead and maps it through a fixed random matrix A; the model's
low intrinsic dimensionality is why a random d-dimensional subspace holds good prompts.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import calibration as calib
from .api import BlackBoxLM, evaluate
from .cmaes import minimize
from .projection import KINDS, Projection, normal_std
from .results import Result
from .runtime import set_seed
from .tasks import get_task

LOSSES = ("ce", "hinge", "neg_metric")
CALIBRATIONS = calib.METHODS
HINGE_MARGIN = 2.0


@dataclass(frozen=True)
class BBTConfig:
    """Hyperparameters of one BBT run. Override with ``dataclasses.replace(cfg, intrinsic_dim=100)``."""

    n_prompt_tokens: int = 50      # L: prompt tokens whose embeddings are tuned (the paper: 50)
    intrinsic_dim: int = 500       # d: the dimension CMA-ES searches (the paper: 500)
    popsize: int = 20              # candidates per CMA-ES generation; each costs one API call
    sigma: float = 1.0             # CMA-ES's initial step size sigma0 (BBT code default: 1)
    bound: float | None = None     # box [-bound, bound] on z; None = unbounded (BBT code default)
    budget: int = 8000             # API calls on the training set (the paper: 8000)
    loss: str = "ce"               # "ce" (cross-entropy), "hinge" (margin 2) or "neg_metric" (-accuracy/F1)
    projection: str = "uniform"    # "uniform" (BBT, Table 2) or "normal" (model-scaled, as in the BBTv2 code)
    alpha: float = 1.0             # normal projection: prompt entries start at alpha x the embeddings' std
    prompt_position: str = "auto"  # "before": placeholder tokens before the input (the papers, MLMs);
                                   # "after": the template tokens after the input (causal LMs, fast)
    eval_every: int = 100          # dev metric every this many API calls; the best dev prompt is kept
    seed: int = 42                 # seeds the projection and CMA-ES
    calibration: str | None = None # calibrate label-word logits in the loss, dev and test:
                                   # "champion" (competition winner), "contextual", or None

    def __post_init__(self) -> None:
        checks = [
            (self.calibration in (None,) + CALIBRATIONS,
             f"calibration must be one of {CALIBRATIONS} or None, not {self.calibration!r}"),
            (self.n_prompt_tokens >= 1, "n_prompt_tokens must be at least 1"),
            (self.intrinsic_dim >= 1, "intrinsic_dim must be at least 1"),
            (self.popsize >= 2, "popsize must be at least 2 (CMA-ES needs a population)"),
            (self.sigma > 0, "sigma must be positive"),
            (self.bound is None or self.bound > 0, "bound must be positive, or None for no bound"),
            (self.budget >= self.popsize, f"budget ({self.budget}) must cover one generation (popsize "
                                          f"{self.popsize}); a budget of zero tunes nothing"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}, not {self.loss!r}"),
            (self.projection in KINDS, f"projection must be one of {KINDS}, not {self.projection!r}"),
            (self.alpha > 0, "alpha must be positive"),
            (self.prompt_position in ("auto", "before", "after"), "prompt_position must be auto, before or after"),
            (self.eval_every >= 1, "eval_every must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"BBTConfig: {message}.")

    @classmethod
    def paper(cls, seed: int = 42) -> "BBTConfig":
        """The paper's setting: L=50, d=500, popsize 20, 8000 calls. For a GPU with RoBERTa-large."""
        return cls(seed=seed)

    @classmethod
    def cpu_quick(cls, seed: int = 42) -> "BBTConfig":
        """One SST-2 16-shot run in at most 5 minutes on a 2-core CPU with the embedded model.

        The prompt covers the 3 template tokens before the answer, and the normal projection keeps its
        entries at alpha = 0.2 of the embeddings' scale: with alpha = 1 the prompts replaced those
        tokens rather than nudging them and overfitted the 32 training examples (SST-2, seed 42:
        69.2% test against 78.3% for the manual prompt, measured).
        """
        return cls(n_prompt_tokens=3, intrinsic_dim=100, popsize=10, budget=400, loss="ce",
                   projection="normal", alpha=0.2, sigma=1.0, eval_every=50, seed=seed)


def candidate_losses(logits: torch.Tensor, labels: torch.Tensor, loss: str, task) -> tuple[np.ndarray, np.ndarray]:
    """Loss and train metric of each candidate. logits (pop, batch, classes), labels (batch,)."""
    logits = logits.float()
    pop = logits.shape[0]
    metric = np.array([task.score(logits[i].argmax(-1).numpy(), labels.numpy()) for i in range(pop)])
    if loss == "neg_metric":
        return -metric, metric
    if loss == "ce":
        target = labels.expand(pop, -1)
        values = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1)
    else:  # hinge: every wrong class should trail the gold one by HINGE_MARGIN
        gold = logits.gather(2, labels.expand(pop, -1)[..., None])  # (pop, batch, 1)
        gap = torch.relu(HINGE_MARGIN - (gold - logits))             # (pop, batch, classes)
        wrong = torch.ones_like(gap).scatter_(2, labels.expand(pop, -1)[..., None], 0.0)
        values = (gap * wrong).sum(2).mean(1)
    return values.numpy(), metric


def make_projection(cfg, model, out_dim: int, sigma_hat: float, seed: int) -> Projection:
    """The projection for one prompt: uniform, or normal scaled to sigma_hat (the values it is added to)."""
    std = normal_std(sigma_hat, cfg.intrinsic_dim, cfg.sigma, cfg.alpha) if cfg.projection == "normal" else 1.0
    return Projection(cfg.intrinsic_dim, out_dim, seed, cfg.projection, std)


def finish(res: Result, model, task, split, cfg, evaluate_test: bool) -> None:
    """Fit the tuned prompt's calibration (if any), keep it in the result, and score the test set."""
    cal = None
    if cfg.calibration:
        cal = calib.for_prompt(cfg.calibration, model, task, split.train, res.prompt, res.position)
        res.extra["calibration"] = cal.to_dict()
    if evaluate_test:
        res.test_metric = evaluate(model, task, split.test, res.prompt, position=res.position, calibration=cal)


def run_bbt(model, task, split, cfg: BBTConfig | None = None, *, display: bool = True, callback=None,
            evaluate_test: bool = True) -> Result:
    """Tune a shallow prompt with BBT on split.train, select on split.dev, report split.test.

    Returns a :class:`Result` (``res.history``, ``res.prompt``, ``res.dev_metric``,
    ``res.test_metric``, ``res.api_calls``) that ``res.save(path)`` keeps.
    """
    cfg = cfg or BBTConfig.cpu_quick()
    task = get_task(task)
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    n, H = cfg.n_prompt_tokens, model.hidden_size
    train = BlackBoxLM(model, task, split.train, budget=cfg.budget, position=cfg.prompt_position)
    dev_api = BlackBoxLM(model, task, split.dev, position=cfg.prompt_position)  # model selection, not tuning
    sigma_hat = model.embeddings.weight.float().std().item()
    proj = make_projection(cfg, model, n * H, sigma_hat, cfg.seed)
    calibrate = calib.for_objective(cfg.calibration, model, task, split.train, train.position)

    def objective(Z: np.ndarray):
        out = train(proj(Z).view(len(Z), n, H))
        return candidate_losses(calibrate(out.logits), out.labels, cfg.loss, task)

    def dev(z: np.ndarray) -> float:
        prompt = proj(z).view(1, n, H)
        logits = calib.apply_for_prompt(cfg.calibration, model, task, split.train, prompt[0],
                                        dev_api(prompt).logits[0], train.position)
        return task.score(logits.argmax(-1).numpy(), dev_api.labels.numpy())

    trace = minimize(objective, cfg.intrinsic_dim, budget=cfg.budget, popsize=cfg.popsize, sigma0=cfg.sigma,
                     bound=cfg.bound, seed=cfg.seed, eval_every=cfg.eval_every, dev=dev, callback=callback,
                     display=display, desc=f"BBT {task.name}")
    res = Result("bbt", task.name, model.name, asdict(cfg), trace.best_z[None], [proj], n, H, [0],
                 model.num_layers, train.position, trace.history, trace.best_dev, None, trace.calls,
                 0.0, trace.stop, {"seconds_per_call": train.seconds_per_call})
    finish(res, model, task, split, cfg, evaluate_test)
    res.seconds = time.perf_counter() - t0
    return res
