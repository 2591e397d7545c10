"""Instance-aware prompt learning (IPL; Jin et al., arXiv 2201.07126), without and with gradients.

IPL weights each prompt token by its relevance to the input:
w_i(x) = sigmoid(mean_j (W_q p_i + b_q) . (W_k e_j + b_k) / sqrt(h)), and token i becomes w_i p_i.
The mean over the input's word embeddings e_j commutes with W_k, so all a client needs of an input is
its mean word embedding: what an embeddings endpoint returns (``BlackBoxLM.input_embeddings``).

* ``mode="black-box"``: CMA-ES on z = (z_P, z_Q, z_K) through model-scaled random projections
  (``spaces.InstancePrompt``), one API call per candidate with one prompt per example.
* ``mode="gradient"``: the paper's version, a white-box reference: P from an embedding through an
  MLP, W_q and W_k linear maps with biases, trained with AdamW and a linear warm-up schedule by
  backpropagation through the frozen model.

In both, the weighted prompt is *added* to the template tokens (as BBT adds A z), so w = 0 or P = 0 is
the manual prompt; the paper prepends 16 new tokens instead (``paper()`` puts 16 placeholders before
the input, whose embeddings the prompt is added to).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from ..api.blackbox import BlackBoxLM
from ..fields import check_fields
from ..tuning.loop import to_result, tune
from ..tuning.objectives import LOSSES, DevScore, Loss, train_and_dev
from ..optim.optimizers import CMA
from ..tuning.projection import Projection, normal_std
from ..tuning.results import Result
from ..runtime import set_seed
from ..tuning.spaces import InstancePrompt
from ..data.tasks import get_task

MODES = ("black-box", "gradient")


@dataclass(frozen=True)
class IPLConfig:
    """One IPL run. ``mode`` picks the black-box version (CMA-ES through the API) or the gradient one."""

    mode: str = "black-box"        # "black-box" (CMA-ES on z) or "gradient" (the paper: AdamW, white box)
    n_prompt_tokens: int = 16      # prompt tokens (the paper: 16)
    head_size: int = 64            # h of W_q and W_k (the paper: 64)
    intrinsic_dim: int = 500       # black box: d of z_P, which generates P (as BBT's d)
    weight_dim: int = 50           # black box: d of z_Q and of z_K, which generate W_q and W_k
    popsize: int = 20              # CMA-ES candidates per generation; each costs one API call
    sigma: float = 1.0             # CMA-ES's initial step size
    bound: float | None = None     # box on z; None = unbounded
    budget: int = 8000             # black box: API calls on the training set
    loss: str = "ce"               # "ce", "hinge" or "neg_metric" (black box; the gradient mode uses ce)
    alpha: float = 1.0             # P's entries start at alpha x the word embeddings' std (model-scaled)
    prompt_position: str = "auto"  # "before" (the paper) or "after" (the template tokens, causal LMs)
    eval_every: int = 100          # dev metric every this many calls (black box) or steps (gradient)
    select_se: float = 0.0         # a tuned z must beat the start on dev by > this many standard errors (bbtkit.tuning.selection)
    lr: float = 1e-5               # gradient: AdamW's learning rate (the paper: 1e-5)
    steps: int = 1000              # gradient: optimizer steps
    batch_size: int = 16           # gradient: examples per step
    warmup: float = 0.0            # gradient: fraction of steps of linear warm-up (then linear decay)
    seed: int = 42

    def __post_init__(self) -> None:
        check_fields(self, positive=("sigma", "alpha", "bound", "lr"), nonneg=("select_se",), between={"warmup": (0.0, 1.0)},
                     at_least={"n_prompt_tokens": 1, "head_size": 1, "intrinsic_dim": 1, "weight_dim": 1, "popsize": 2,
                               "eval_every": 1, "steps": 1, "batch_size": 1},
                     choices={"mode": MODES, "loss": LOSSES, "prompt_position": ("auto", "before", "after")})
        if self.warmup == 1:
            raise ValueError("IPLConfig: warmup is a fraction of the steps, in [0, 1), not 1.")
        if self.budget < self.popsize:
            raise ValueError(f"IPLConfig: budget ({self.budget}) must cover one generation (popsize {self.popsize}).")

    @classmethod
    def paper(cls, seed: int = 42, mode: str = "black-box") -> "IPLConfig":
        """The paper's prompt (16 tokens before the input, h = 64, AdamW at 1e-5); the black box at BBT's
        paper setting (d = 500, popsize 20, 8000 calls). For a GPU with RoBERTa-large."""
        return cls(mode=mode, prompt_position="before", seed=seed)

    @classmethod
    def cpu_quick(cls, seed: int = 42, mode: str = "black-box") -> "IPLConfig":
        """BBT's cpu_quick prompt (the 3 template tokens before the answer, d = 100 for P, alpha = 0.2,
        popsize 10) plus d = 16 for each of W_q and W_k; 300 calls. The gradient mode: 60 steps of 16
        examples at lr 1e-3 (1e-5 barely moves in so few steps)."""
        return cls(mode=mode, n_prompt_tokens=3, intrinsic_dim=100, weight_dim=16, popsize=10, budget=300,
                   alpha=0.2, eval_every=50 if mode == "black-box" else 10, lr=1e-3, steps=60, warmup=0.1, seed=seed)


def make_space(cfg: IPLConfig, api: BlackBoxLM) -> InstancePrompt:
    """Projections scaled so that a z of CMA-ES's initial spread gives P entries at alpha x the word
    embeddings' std, and scores q . k / sqrt(h) of about unit spread over the training inputs."""
    H, n, h = api.model.hidden_size, cfg.n_prompt_tokens, cfg.head_size
    feats = api.input_embeddings()
    center = feats.mean(0)
    spread = float((feats - center).norm(dim=1).pow(2).mean().sqrt()) or 1.0
    sigma_e = float(api.value_scales(n)[0])
    p_norm = cfg.alpha * sigma_e * H ** 0.5  # a typical |P_i|
    return InstancePrompt([
        Projection(cfg.intrinsic_dim, n * H, cfg.seed, "normal", normal_std(sigma_e, cfg.intrinsic_dim, cfg.sigma, cfg.alpha)),
        Projection(cfg.weight_dim, h * H, cfg.seed + 1, "normal", normal_std(1 / p_norm, cfg.weight_dim, cfg.sigma)),
        Projection(cfg.weight_dim, h * H, cfg.seed + 2, "normal", normal_std(1 / spread, cfg.weight_dim, cfg.sigma)),
    ], n, H, h, center)


def run_ipl(model, task, split, cfg: IPLConfig | None = None, *, display: bool = True, callback=None,
            evaluate_test: bool = True, checkpoint=None, resume=None) -> Result:
    """Tune an instance-aware prompt on split.train, select on split.dev, report split.test.

    Returns the same :class:`~bbtkit.tuning.results.Result` as the other methods; ``res.prompt`` is a
    ``WeightedPrompt`` (``bk.evaluate(model, task, examples, res.prompt)`` re-evaluates it, and
    ``res.prompt.weights(...)`` gives the token weights of inputs).
    """
    cfg, task = cfg or IPLConfig.cpu_quick(), get_task(task)
    if not isinstance(cfg, IPLConfig):
        raise TypeError("run_ipl needs an IPLConfig, e.g. bk.IPLConfig.cpu_quick().")
    if cfg.mode == "gradient":
        if checkpoint is not None or resume is not None:
            raise ValueError("Checkpoints are for the black-box mode; the gradient mode runs in one go.")
        from ..whitebox.ipl_gradient import run_gradient
        return run_gradient(model, task, split, cfg, display=display, evaluate_test=evaluate_test)
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    train, dev_api = train_and_dev(model, task, split, cfg.budget, cfg.prompt_position)
    space, loss = make_space(cfg, train), Loss(task, cfg.loss)
    dev = DevScore(space, dev_api, task, model, split.train, None, train.position)
    trace = tune(lambda X: loss(space.ask(train, X)),
                 CMA(space.dim, cfg.sigma, cfg.popsize, cfg.seed, cfg.bound), budget=cfg.budget, api=train, dev=dev,
                 eval_every=cfg.eval_every, callback=callback, display=display, desc=f"IPL {task.name}",
                 checkpoint=checkpoint, resume=resume, fingerprint={"method": "ipl", **asdict(cfg)},
                 select_se=cfg.select_se)
    extra = {"head_size": cfg.head_size, "feature_mean": space.center.tolist(), "mode": cfg.mode}
    return to_result("ipl", model, task, split, cfg, space, trace, train, t0, evaluate_test=evaluate_test, extra=extra)


__all__ = ["IPLConfig", "MODES", "make_space", "run_ipl"]
