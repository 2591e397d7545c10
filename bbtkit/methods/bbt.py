"""Black-Box Tuning (Sun et al., ICML 2022): CMA-ES on z, a random projection A, p = p0 + A z.

The prompt has L x D numbers (tokens x hidden), far too many for a derivative-free optimiser.
BBT searches a d-dimensional z instead and maps it through a fixed random matrix A; the model's
low intrinsic dimensionality is why a random d-dimensional subspace holds good prompts.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from ..tuning import calibration as calib
from ..tuning.loop import to_result, tune
from ..tuning.objectives import HINGE_MARGIN, LOSSES, DevScore, Loss, candidate_losses, train_and_dev  # noqa: F401 (notebooks import them here)
from ..optim.by_name import check_optimizer, make
from ..tuning.projection import KINDS, Projection, normal_std
from ..runtime import set_seed
from ..tuning.spaces import ShallowPrompt
from ..fields import check_fields
from ..data.tasks import get_task

CALIBRATIONS = calib.CALIBRATIONS


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
    select_se: float = 0.0         # a tuned z must beat the start on dev by > this many standard errors (bbtkit.tuning.selection)
    seed: int = 42                 # seeds the projection and CMA-ES
    calibration: str | None = None # calibrate label-word logits in the loss, dev and test:
                                   # "champion" (competition winner), "contextual", or None
    optimizer: str = "cma"         # searches z: "cma" (CMA-ES, the paper), "fireworks", "random" or any
                                   # nevergrad optimizer's name ("DE", "PSO", "OnePlusOne", "TBPSA", "NGOpt", ...)

    def __post_init__(self) -> None:
        check_fields(self, positive=("sigma", "bound", "alpha"), nonneg=("select_se",),
                     at_least={"n_prompt_tokens": 1, "intrinsic_dim": 1, "popsize": 2, "eval_every": 1},
                     choices={"calibration": CALIBRATIONS, "loss": LOSSES, "projection": KINDS,
                              "prompt_position": ("auto", "before", "after")})
        self._check_optimizer()
        self._check_budget()

    def _check_optimizer(self) -> None:
        """The optimizer names one that ``bbtkit.optim.by_name.make`` builds (a method with its own overrides this)."""
        check_optimizer(self.optimizer, type(self).__name__)

    def _check_budget(self) -> None:
        """The budget must cover one generation of the population (a method without one overrides this)."""
        if self.budget < self.popsize:
            raise ValueError(f"{type(self).__name__}: budget ({self.budget}) must cover one generation (popsize "
                             f"{self.popsize}); a budget of zero tunes nothing.")

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


def make_projection(cfg, model, out_dim: int, sigma_hat: float, seed: int) -> Projection:
    """The projection for one prompt: uniform, or normal scaled to sigma_hat (the values it is added to)."""
    std = normal_std(sigma_hat, cfg.intrinsic_dim, cfg.sigma, cfg.alpha) if cfg.projection == "normal" else 1.0
    return Projection(cfg.intrinsic_dim, out_dim, seed, cfg.projection, std)


def run_shallow(method: str, make_optimizer, model, task, split, cfg: BBTConfig, *, display: bool = True,
                callback=None, evaluate_test: bool = True, checkpoint=None, resume=None):
    """BBT's space (a shallow prompt p0 + A z), loss and dev selection, searched by any optimizer:
    ``make_optimizer(cfg)`` picks it. ``run_bbt`` picks ``cfg.optimizer``; other methods pick their own."""
    task = get_task(task)
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    n, H = cfg.n_prompt_tokens, model.hidden_size
    train, dev_api = train_and_dev(model, task, split, cfg.budget, cfg.prompt_position)
    space = ShallowPrompt(make_projection(cfg, model, n * H, float(train.value_scales(n)[0]), cfg.seed), n, H)
    loss = Loss(task, cfg.loss, calib.for_objective(cfg.calibration, model, task, split.train, train.position))
    dev = DevScore(space, dev_api, task, model, split.train, cfg.calibration, train.position)
    trace = tune(lambda X: loss(space.ask(train, X)), make_optimizer(cfg), budget=cfg.budget, api=train,
                 dev=dev, eval_every=cfg.eval_every, callback=callback, display=display,
                 desc=f"{method}{optimizer_tag(cfg, method)} {task.name}",
                 checkpoint=checkpoint, resume=resume, fingerprint={"method": method, **asdict(cfg)},
                 select_se=cfg.select_se)
    return to_result(method, model, task, split, cfg, space, trace, train, t0, evaluate_test=evaluate_test)


def make_optimizer(cfg: BBTConfig):
    """The optimizer ``cfg.optimizer`` names, on R^intrinsic_dim, seeded by ``cfg.seed`` (CMA-ES by default)."""
    return make(cfg.optimizer, cfg.intrinsic_dim, popsize=cfg.popsize, sigma=cfg.sigma, seed=cfg.seed,
                budget=cfg.budget, bound=cfg.bound)


def optimizer_tag(cfg, method: str) -> str:
    """" (DE)" for a run whose optimizer is neither its config's default nor the method's name, for progress
    bars; else ""."""
    name = getattr(cfg, "optimizer", None)
    return "" if name in (None, method, getattr(type(cfg), "optimizer", None)) else f" ({name})"


def run_bbt(model, task, split, cfg: BBTConfig | None = None, *, display: bool = True, callback=None,
            evaluate_test: bool = True, checkpoint=None, resume=None):
    """Tune a shallow prompt with BBT on split.train, select on split.dev, report split.test; ``cfg.optimizer``
    searches z (CMA-ES by default, as in the paper).

    Returns a :class:`~bbtkit.tuning.results.Result` (``res.history``, ``res.prompt``, ``res.dev_metric``,
    ``res.test_metric``, ``res.api_calls``, ``res.stop``) that ``res.save(path)`` keeps.
    callback(trace) runs after every generation (``trace.history``, ``trace.best_z``). A run stopped
    by Ctrl-C returns what it found so far; ``checkpoint``/``resume`` take a file path (see ``bbtkit.tuning.loop``).
    """
    return run_shallow("bbt", make_optimizer, model, task, split, cfg or BBTConfig.cpu_quick(), display=display,
                       callback=callback, evaluate_test=evaluate_test, checkpoint=checkpoint, resume=resume)
