"""BBTv2 (Sun et al., EMNLP 2022): a prompt at every layer, tuned one layer at a time.

Each layer l has its own search vector z_l, its own random projection A_l and its own CMA-ES.
A round goes from the bottom layer to the top with one ask/tell per layer (divide and conquer,
as in the original ``deepbbt.py``); after each layer's generation the best prompt found for that
layer is kept. Projections are normal, scaled to what each prompt is added to: the word
embeddings for layer 0, the hidden states entering layer l (first forward pass, outliers clipped
at mu +- 3 sigma, five times) for the others: std = alpha * sigma_hat / (sqrt(d) * sigma).

Two differences from ``deepbbt.py``, both on purpose:

* the incumbent (all layers' kept prompts) is evaluated once at the start, and a layer's new prompt
  is kept only if it beats the incumbent's training loss, so the search starts at the manual
  prompt and the training loss never goes up (``deepbbt.py`` keeps each ES's best sample, even
  when it is worse than the zero prompt it started from);
* each layer's CMA-ES has its own seed (seed + layer), so layers do not draw identical samples.

The pieces: a ``DeepPrompt`` space, the ``LayerwiseCMA`` optimizer (which holds the divide and
conquer and the keep-if-better rule), the ``Loss`` objective, all run by the one loop (``loop.tune``).
The layer cache: while layer l is tuned nothing below it changes, so the API caches the hidden
states entering layer l and runs only layers l..L-1 per candidate (``BlackBoxLM(layer_cache=True)``
finds l itself: the lowest layer where the candidates differ; ``cache_below`` does it by hand).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from ..tuning import calibration as calib
from ..api.blackbox import BlackBoxLM
from ..guards import warn_partial_round
from .bbt import BBTConfig, make_projection
from ..fields import check_fields
from ..tuning.loop import to_result, tune
from ..tuning.objectives import DevScore, Loss, train_and_dev
from ..optim.by_name import make_layerwise
from ..optim.optimizers import Layerwise
from ..runtime import set_seed
from ..tuning.spaces import DeepPrompt
from ..data.tasks import get_task


CACHES = ("layers", "context", "none")


@dataclass(frozen=True)
class BBTv2Config(BBTConfig):
    """Hyperparameters of one BBTv2 run; the fields of BBTConfig apply to every layer, plus two.

    intrinsic_dim, popsize and sigma are per layer; budget counts API calls over all layers.
    """

    projection: str = "normal"     # "normal" (model-scaled per layer, BBTv2) or "uniform" (as BBT)
    sigma: float = 0.2             # CMA-ES's initial step size per layer (BBTv2 README: 0.2)
    alpha: float = 0.2             # prompt entries start at alpha x the std of what they are added to
    loss: str = "ce"               # "ce", "hinge" or "neg_metric" (deepbbt.py's default: ce)
    layers: tuple[int, ...] | None = None  # which layers get a prompt; None = all of them
    cache: str = "layers"          # "layers": run only layers l..L-1 while layer l is tuned, on top of
                                   # "context": the input's keys and values computed once (causal LMs,
                                   # prompt after the input); "none": the full forward every call.
                                   # All three give the same results; only the speed differs.

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, choices={"cache": CACHES})
        if self.layers is not None:
            if not self.layers or any(l < 0 for l in self.layers) or len(set(self.layers)) != len(self.layers):
                raise ValueError("BBTv2Config: layers must be distinct layer indices (0 = the embeddings), "
                                 "or None for all layers.")
            object.__setattr__(self, "layers", tuple(sorted(self.layers)))

    @classmethod
    def paper(cls, seed: int = 42) -> "BBTv2Config":
        """BBTv2's setting: 50 tokens, d=500 per layer, popsize 20, 8000 calls, sigma = alpha = 0.2."""
        return cls(n_prompt_tokens=50, intrinsic_dim=500, popsize=20, budget=8000, sigma=0.2, alpha=0.2,
                   eval_every=100, seed=seed)

    @classmethod
    def cpu_quick(cls, seed: int = 42) -> "BBTv2Config":
        """One SST-2 16-shot run in a few minutes on a 2-core CPU; the same 400 calls as BBT's cpu_quick."""
        return cls(n_prompt_tokens=3, intrinsic_dim=100, popsize=10, budget=400, sigma=1.0, alpha=0.2,
                   eval_every=50, seed=seed)


@dataclass
class Pieces:
    """What BBTv2 and AJO build before tuning: the train and dev APIs, the per-layer scales, the deep
    prompt space (one projection per prompted layer) and the layer-by-layer optimizer (CMA-ES by default)."""

    task: object
    train: BlackBoxLM
    dev_api: BlackBoxLM
    scales: object  # (layers,) sigma_hat per layer, from BlackBoxLM.value_scales
    space: DeepPrompt
    opt: Layerwise
    notes: list     # what the result should keep about the run's design (round_note)


def round_calls(cfg, layers: int) -> int:
    """API calls of one full round over ``layers`` prompted layers: the starting prompt's call, then
    popsize per layer; AJO (a config with ``phase_generations``) adds a classifier phase's call every
    phase_generations layers."""
    if layers <= 0:
        return 0
    return math.ceil(layers / (getattr(cfg, "phase_generations", None) or layers)) + layers * cfg.popsize


def layers_reached(cfg, layers: int, budget: int) -> int:
    """How many of the prompted layers one round tunes within ``budget`` calls (the bottom ones)."""
    return max((k for k in range(layers + 1) if round_calls(cfg, k) <= budget), default=0) if layers else 0


def round_note(cfg, num_layers: int) -> str | None:
    """A sentence when ``cfg.budget`` ends before one round over the prompted layers has reached the top
    (which layers, and what to do), else None. Any config without layer rounds (BBT's): None."""
    if not isinstance(cfg, BBTv2Config):
        return None
    L = num_layers if cfg.layers is None else len(cfg.layers)
    full, reached = round_calls(cfg, L), layers_reached(cfg, L, cfg.budget)
    if reached >= L:
        return None
    which = f"the bottom {reached} of its {L} layers" if cfg.layers is None else \
        f"{reached} of its {L} layers ({', '.join(map(str, cfg.layers[:reached]))})"
    every = math.ceil(num_layers / max(reached, 1))
    k = len(range(0, num_layers, every))  # every `every`-th layer: a round of them fits the budget
    fewer = (f", or prompt fewer layers, e.g. layers=tuple(range(0, {num_layers}, {every})) ({k} layer"
             f"{'s' * (k > 1)}, one round in {round_calls(cfg, k)} calls)" if cfg.layers is None and reached
             else ", or prompt fewer layers")
    return (f"{type(cfg).__name__.removesuffix('Config')}: a budget of {cfg.budget} calls tunes {which} once and stops "
            f"before the top (one round is {full} calls at popsize {cfg.popsize}). Give a budget of at least {full}"
            f"{fewer}.")


def setup(model, task, split, cfg: BBTv2Config, name: str = "BBTv2") -> Pieces:
    """The pieces BBTv2 and AJO share (notebook 06 builds AJO's loop from them)."""
    task = get_task(task)
    set_seed(cfg.seed)
    L = model.num_layers
    layers = list(range(L)) if cfg.layers is None else list(cfg.layers)
    if layers[-1] >= L:
        raise ValueError(f"{type(cfg).__name__}.layers: {model.name} has layers 0..{L - 1}, not {layers[-1]}.")
    if cfg.budget < 1 + cfg.popsize:
        raise ValueError(f"{name} needs a budget of at least popsize + 1 = {cfg.popsize + 1} calls "
                         "(one call evaluates the starting prompt).")
    note = round_note(cfg, L)
    if note:
        warn_partial_round(note)
    train, dev_api = train_and_dev(model, task, split, cfg.budget, cfg.prompt_position,
                                   use_cache=cfg.cache != "none", layer_cache=cfg.cache == "layers")
    n, H = cfg.n_prompt_tokens, model.hidden_size
    scales = train.value_scales(n, deep=True)
    projs = [make_projection(cfg, model, n * H, float(scales[l]), cfg.seed + l) for l in layers]
    space = DeepPrompt(projs, layers, L, n, H)
    opt = make_layerwise(cfg.optimizer, cfg.intrinsic_dim, layers, popsize=cfg.popsize, sigma=cfg.sigma, seed=cfg.seed,
                         budget=cfg.budget, bound=cfg.bound)
    return Pieces(task, train, dev_api, scales, space, opt, [note] if note else [])


def run_bbtv2(model, task, split, cfg: BBTv2Config | None = None, *, display: bool = True, callback=None,
              evaluate_test: bool = True, checkpoint=None, resume=None):
    """Tune a deep prompt with BBTv2 on split.train, select on split.dev, report split.test.

    Returns a :class:`~bbtkit.tuning.results.Result` like ``run_bbt``'s; ``res.prompt`` is (layers, tokens,
    hidden) and ``res.history`` has one row per layer generation (with its ``layer`` and ``round``).
    callback(trace) runs after every generation; Ctrl-C returns what was found; checkpoint/resume
    take a file path (see ``bbtkit.tuning.loop``).
    """
    cfg = cfg or BBTv2Config.cpu_quick()
    if not isinstance(cfg, BBTv2Config):
        raise TypeError("run_bbtv2 needs a BBTv2Config (e.g. bk.BBTv2Config.cpu_quick()); for BBT use run_bbt.")
    t0 = time.perf_counter()
    p = setup(model, task, split, cfg)
    loss = Loss(p.task, cfg.loss, calib.for_objective(cfg.calibration, model, p.task, split.train, p.train.position))
    dev = DevScore(p.space, p.dev_api, p.task, model, split.train, cfg.calibration, p.train.position)
    trace = tune(lambda Z: loss(p.space.ask(p.train, Z)), p.opt, budget=cfg.budget, api=p.train, dev=dev,
                 eval_every=cfg.eval_every, callback=callback, display=display, desc=f"BBTv2 {p.task.name}",
                 checkpoint=checkpoint, resume=resume, fingerprint={"method": "bbtv2", **asdict(cfg)},
                 select_se=cfg.select_se)
    extra = {"cache_seconds": p.train.cache_seconds, "layer_scales": p.scales.tolist(), "train_loss": p.opt.incumbent,
             **({"notes": p.notes} if p.notes else {})}
    return to_result("bbtv2", model, p.task, split, cfg, p.space, trace, p.train, t0, evaluate_test=evaluate_test,
                     extra=extra)
