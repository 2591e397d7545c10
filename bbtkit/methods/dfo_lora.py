"""DFO-LoRA (Jin, Liu & Tan, arXiv 2403.01754): low-rank adapters on W_Q and W_K, tuned without gradients.

Every adapted layer l has its own z_l (d numbers), split into four equal parts mapped by four fixed
random projections to A_Q (r, in), B_Q (out, r), A_K and B_K; the adapter adds B A x to the query
and the key. The layers are optimized alternately, as BBTv2 does its prompts (``optimizers.Layerwise``:
a layer's new z is kept only if the whole model gets better), by CMA-ES or the Fireworks Algorithm.
The projections are normal with std = alpha * sigma_hat_l / (sqrt(d) * sigma), sigma_hat_l the
scale of what enters layer l (the embeddings for layer 0, the clipped hidden states above: BBTv2's
statistics, from ``BlackBoxLM.value_scales``).

Where ours differs from the released code (``deepfwlora.py``), on purpose or by necessity:

* the paper scales all four projections; the code scales only A_Q and A_K above layer 0 and leaves
  B at PyTorch's default Linear init, U(+-1/sqrt(d/4)). ``scaled="A"`` does what the code does;
* the code keeps each CMA-ES's best sample even when it is worse than the adapters it started
  from; we keep a layer's new z only if the whole model improves (as our BBTv2);
* the code has no Fireworks Algorithm (the paper names it); ours is Tan & Zhu's (``fireworks.py``);
* a service here applies the adapters per candidate in one batched pass (``BlackBoxLM(adapters=...)``)
  and caches the hidden states below the layer being tuned; the code sets weights for each call.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from ..api.blackbox import BlackBoxLM
from ..fields import check_fields
from ..optim.by_name import check_optimizer, make_layerwise
from ..tuning.loop import to_result, tune
from ..tuning.objectives import LOSSES, DevScore, Loss, train_and_dev
from ..optim.optimizers import Layerwise
from ..tuning.projection import Projection, normal_std
from ..runtime import set_seed
from ..tuning.spaces import LoRASpace
from ..data.tasks import get_task

TARGETS = ("q", "k", "v")


@dataclass(frozen=True)
class DFOLoRAConfig:
    """Hyperparameters of one DFO-LoRA run. ``layers``: which layers get adapters (None: all;
    negative indices count from the top); intrinsic_dim and popsize are per layer."""

    rank: int = 4                  # r of every adapter (the code: 4)
    targets: tuple[str, ...] = ("q", "k")  # the projections adapted: W_Q and W_K (the paper)
    intrinsic_dim: int = 500       # d per layer, split evenly over the 2 x len(targets) matrices
    optimizer: str = "cma"         # "cma", "fireworks", "random" or a nevergrad optimizer ("DE", "NGOpt", ...)
    popsize: int = 20              # CMA-ES candidates per generation
    sigma: float = 1.0             # CMA-ES's initial step size (the code: 1)
    alpha: float = 1.0             # projected entries start at alpha x the scale they meet (the code: 1)
    scaled: str = "all"            # "all": every projection model-scaled (the paper); "A": the code's
    bound: float | None = None     # CMA-ES box [-bound, bound]; None: unbounded
    fw_bound: float = 2.0          # Fireworks: the search box [-fw_bound, fw_bound]^d
    fw_fireworks: int = 5          # Fireworks: n, m, m_hat (Tan & Zhu's 5, 50, 5)
    fw_sparks: int = 50
    fw_gaussian: int = 5
    fw_min_amplitude: float = 0.0  # 0: Tan & Zhu; > 0: EFWA's floor on the amplitudes
    layers: tuple[int, ...] | None = None
    budget: int = 8000             # API calls on the training set, over all layers
    loss: str = "ce"
    prompt_position: str = "auto"  # where the template's answer is read (adapters need no prompt)
    cache: str = "layers"          # "layers": run only the layers from the one being tuned up; "none"
    eval_every: int = 100
    select_se: float = 1.0         # keep B = 0 unless tuned adapters beat it on dev by > this many standard errors
    seed: int = 42

    def __post_init__(self) -> None:
        check_fields(self, positive=("intrinsic_dim", "sigma", "alpha", "bound", "fw_bound"),
                     nonneg=("fw_gaussian", "fw_min_amplitude", "select_se", "seed"),
                     at_least={"rank": 1, "popsize": 2, "fw_fireworks": 1, "fw_sparks": 1, "eval_every": 1},
                     choices={"scaled": ("all", "A"), "loss": LOSSES,
                              "cache": ("layers", "none"), "prompt_position": ("auto", "before", "after")})
        check_optimizer(self.optimizer, "DFOLoRAConfig")
        bad = [t for t in self.targets if t not in TARGETS]
        if not self.targets or bad or len(set(self.targets)) < len(self.targets):
            raise ValueError(f"DFOLoRAConfig: targets must name different projections among {TARGETS}, e.g. "
                             f"('q', 'k'), not {self.targets!r}.")
        if self.intrinsic_dim % (2 * len(self.targets)):
            raise ValueError(f"DFOLoRAConfig: intrinsic_dim ({self.intrinsic_dim}) must split evenly over the "
                             f"{2 * len(self.targets)} matrices (A and B of each target): use a multiple of "
                             f"{2 * len(self.targets)}.")
        if self.layers is not None and (not self.layers or len(set(self.layers)) < len(self.layers)):
            raise ValueError(f"DFOLoRAConfig: layers must name at least one layer, each once (or be None for all), "
                             f"not {self.layers!r}.")
        first = self.fw_fireworks if self.optimizer == "fireworks" else self.popsize
        if self.budget < 1 + first:
            raise ValueError(f"DFOLoRAConfig: budget ({self.budget}) must cover the starting adapters' call and one "
                             f"generation ({first} calls with optimizer={self.optimizer!r}), at least {1 + first}; "
                             "a smaller budget tunes nothing.")

    @classmethod
    def paper(cls, seed: int = 42) -> "DFOLoRAConfig":
        """The code's setting: rank 4 on W_Q and W_K of every layer, d = 500, popsize 20, sigma 1, 8000 calls."""
        return cls(seed=seed)

    @classmethod
    def cpu_quick(cls, seed: int = 42, optimizer: str = "cma") -> "DFOLoRAConfig":
        """A few minutes on a 2-core CPU: the top 6 layers (every call then runs only the layers from
        the one being tuned up), d = 100, popsize 10, 300 calls."""
        return cls(intrinsic_dim=100, popsize=10, budget=300, layers=tuple(range(-6, 0)), eval_every=50,
                   optimizer=optimizer, seed=seed)

    def resolve_layers(self, num_layers: int) -> list[int]:
        """The adapted layers of a model of num_layers, sorted (checked when a run starts)."""
        if self.layers is None:
            return list(range(num_layers))
        if any(not -num_layers <= l < num_layers for l in self.layers):
            raise ValueError(f"DFOLoRAConfig.layers: the model has layers 0..{num_layers - 1}, got {self.layers}.")
        layers = sorted({l % num_layers for l in self.layers})
        if len(layers) < len(self.layers):
            raise ValueError(f"DFOLoRAConfig.layers: {self.layers} name the same layer twice on a model of "
                             f"{num_layers} layers (negative indices count from the top); name each layer once.")
        return layers


def make_space(cfg: DFOLoRAConfig, api: BlackBoxLM, layers: list[int]) -> LoRASpace:
    """Four (or 2 x targets) projections per layer, scaled to what enters that layer."""
    model = api.model
    shapes = api.adapter_shapes(cfg.targets)
    scales = api.value_scales(0, deep=True)
    part = cfg.intrinsic_dim // (2 * len(cfg.targets))
    projections = []
    for l in layers:
        std = normal_std(float(scales[l]), cfg.intrinsic_dim, cfg.sigma, cfg.alpha)
        for k, t in enumerate(cfg.targets):
            d_in, d_out = shapes[t]
            seed = cfg.seed + 1000 * l + 2 * k
            projections.append(Projection(part, cfg.rank * d_in, seed, "normal", std))
            code_b = cfg.scaled == "A" and l > 0  # the code: B keeps PyTorch's Linear init above layer 0
            projections.append(Projection(part, cfg.rank * d_out, seed + 1, "uniform" if code_b else "normal", std))
    return LoRASpace(projections, layers, cfg.rank, shapes, model.num_layers, model.hidden_size)


def make_optimizer(cfg: DFOLoRAConfig, layers: list[int]) -> Layerwise:
    """One optimizer per adapted layer, seeded seed + layer: ``cfg.optimizer`` with the fw_ settings for
    fireworks (in [-fw_bound, fw_bound]^d), each told it gets an even share of the budget."""
    fw = dict(fireworks=cfg.fw_fireworks, sparks=cfg.fw_sparks, gaussian=cfg.fw_gaussian,
              min_amplitude=cfg.fw_min_amplitude)
    return make_layerwise(cfg.optimizer, cfg.intrinsic_dim, layers, popsize=cfg.popsize, sigma=cfg.sigma,
                          seed=cfg.seed, budget=cfg.budget,
                          bound=cfg.fw_bound if cfg.optimizer == "fireworks" else cfg.bound, fireworks=fw)


def run_dfo_lora(model, task, split, cfg: DFOLoRAConfig | None = None, *, display: bool = True, callback=None,
                 evaluate_test: bool = True, checkpoint=None, resume=None):
    """Tune adapters on W_Q and W_K layer by layer on split.train, select on split.dev, report split.test.

    Returns the same :class:`~bbtkit.tuning.results.Result` as the other methods; ``res.adapters`` rebuilds
    the selected adapters from z and the projection seeds (``bk.evaluate(..., adapters=res.adapters)``).
    """
    cfg, task = cfg or DFOLoRAConfig.cpu_quick(), get_task(task)
    if not isinstance(cfg, DFOLoRAConfig):
        raise TypeError("run_dfo_lora needs a DFOLoRAConfig, e.g. bk.DFOLoRAConfig.cpu_quick().")
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    layers = cfg.resolve_layers(model.num_layers)
    train, dev_api = train_and_dev(model, task, split, cfg.budget, cfg.prompt_position,
                                   layer_cache=cfg.cache == "layers")
    space, opt, loss = make_space(cfg, train, layers), make_optimizer(cfg, layers), Loss(task, cfg.loss)
    dev = DevScore(space, dev_api, task, model, split.train, None, train.position)
    trace = tune(lambda Z: loss(space.ask(train, Z)), opt, budget=cfg.budget, api=train, dev=dev,
                 eval_every=cfg.eval_every, callback=callback, display=display,
                 desc=f"DFO-LoRA ({cfg.optimizer}) {task.name}", checkpoint=checkpoint, resume=resume,
                 fingerprint={"method": "dfo_lora", **asdict(cfg)}, select_se=cfg.select_se)
    extra = {"rank": cfg.rank, "targets": list(cfg.targets), "shapes": {t: list(s) for t, s in space.shapes.items()},
             "cache_seconds": train.cache_seconds, "train_loss": opt.incumbent,
             "adapter_numbers": int(sum(p.out_dim for p in space.projections))}
    return to_result("dfo_lora", model, task, split, cfg, space, trace, train, t0, evaluate_test=evaluate_test,
                     extra=extra)
