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

The layer cache: while layer l is tuned nothing below it changes, so the API caches the hidden
states entering layer l and runs only layers l..L-1 per candidate (``BlackBoxLM.cache_below``).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import cma
import numpy as np
import torch

from . import inject
from .api import BlackBoxLM, Forward
from . import calibration as calib
from .bbt import BBTConfig, candidate_losses, finish, make_projection
from .cmaes import _progress, cma_options
from .results import Result
from .runtime import set_seed
from .tasks import get_task


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
    layers: tuple | None = None    # which layers get a prompt; None = all of them
    cache: str = "layers"          # "layers": run only layers l..L-1 while layer l is tuned, on top of
                                   # "context": the input's keys and values computed once (causal LMs,
                                   # prompt after the input); "none": the full forward every call.
                                   # All three give the same results; only the speed differs.

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cache not in CACHES:
            raise ValueError(f"BBTv2Config: cache must be one of {CACHES}, not {self.cache!r}.")
        if self.layers is not None:
            if not self.layers or any(int(l) < 0 for l in self.layers) or len(set(self.layers)) != len(self.layers):
                raise ValueError("BBTv2Config: layers must be distinct layer indices (0 = the embeddings), "
                                 "or None for all layers.")
            object.__setattr__(self, "layers", tuple(sorted(int(l) for l in self.layers)))

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


def clipped_std(values: torch.Tensor, rounds: int = 5, k: float = 3.0) -> float:
    """Standard deviation after clipping outliers to mu +- k sigma, ``rounds`` times (deepbbt.py)."""
    x = values.double().flatten()
    for _ in range(rounds):
        mu, sd = x.mean(), x.std(unbiased=False)
        x = x.clamp(mu - k * sd, mu + k * sd)
    return float(x.std(unbiased=False))


@torch.no_grad()
def layer_scales(model, task, examples, n_prompt: int, position: str) -> np.ndarray:
    """sigma_hat per layer, (layers,): the word embeddings' std for layer 0; for layer l >= 1 the
    clipped std of the hidden states entering it, over every real (unpadded) token of the examples,
    with no prompt (BBTv2's first forward pass)."""
    fw = Forward(model, get_task(task), examples, n_prompt, position, use_cache=False)
    with inject.capture_inputs(model, range(1, model.num_layers)) as seen:
        fw.run(None, None, 1)
    real = fw.mask.bool()  # (batch, seq)
    scales = [model.embeddings.weight.float().std().item()]
    scales += [clipped_std(seen[l][real]) for l in range(1, model.num_layers)]
    return np.array(scales)


class LayerSearch:
    """The state of BBTv2's divide and conquer: one z_l, A_l and CMA-ES per tuned layer, and the
    incumbent deep prompt (every layer's kept prompt) with its training loss.

    ``generation(i, score)`` runs one ask/tell for the i-th tuned layer; ``score(out)`` turns an
    API output into (losses, train metrics) per candidate. BBTv2 and AJO both drive it, with
    different scores.
    """

    def __init__(self, model, cfg: BBTv2Config, layers: list[int], scales: np.ndarray, train: BlackBoxLM):
        self.model, self.cfg, self.layers, self.train = model, cfg, layers, train
        n, H = cfg.n_prompt_tokens, model.hidden_size
        self.projs = [make_projection(cfg, model, n * H, float(scales[l]), cfg.seed + l) for l in layers]
        self.strategies = [cma.CMAEvolutionStrategy(np.zeros(cfg.intrinsic_dim), cfg.sigma,
                                                    cma_options(cfg.popsize, cfg.seed + l, cfg.bound)) for l in layers]
        self.Z = np.zeros((len(layers), cfg.intrinsic_dim))      # the kept z of each tuned layer
        self.deep = torch.zeros(model.num_layers, n, H)          # the incumbent deep prompt they make
        self.incumbent = float("inf")                            # its training loss
        self.stopped: dict[int, dict] = {}
        self.return_hidden = False                               # AJO's score reads the answer hidden states

    def generation(self, i: int, score) -> dict:
        """One CMA-ES generation for layer ``layers[i]``; the layer's prompt is kept if it improves."""
        cfg, l, es = self.cfg, self.layers[i], self.strategies[i]
        n, H = cfg.n_prompt_tokens, self.model.hidden_size
        if cfg.cache == "layers":
            self.train.cache_below(l, self.deep)
        X = np.asarray(es.ask())                                    # (pop, d)
        cand = self.deep.expand(len(X), -1, -1, -1).clone()         # (pop, L, n, H)
        cand[:, l] = self.projs[i](X).view(len(X), n, H)
        losses, metrics = score(self.train(cand, return_hidden=self.return_hidden))
        es.tell(list(X), losses.tolist())
        b = int(np.argmin(losses))
        if losses[b] < self.incumbent:  # keep the layer's new prompt only if the whole prompt improves
            self.incumbent, self.Z[i], self.deep[l] = float(losses[b]), X[b], cand[b, l]
        if es.stop():
            self.stopped[i] = dict(es.stop())
        return {"layer": l, "best_loss": float(losses[b]), "mean_loss": float(losses.mean()),
                "incumbent_loss": self.incumbent, "train_metric": float(metrics[b]), "sigma": float(es.sigma)}

    def stop_reasons(self, rounds: int) -> dict:
        stop = {"budget": f"{self.train.calls} of {self.cfg.budget} calls used", "rounds": rounds}
        stop.update({f"layer {self.layers[i]}": s for i, s in self.stopped.items()})
        return stop


def setup(model, task, split, cfg: BBTv2Config, name: str = "BBTv2"):
    """What BBTv2 and AJO share: layers, the train and dev APIs, the layer scales and the search."""
    task = get_task(task)
    set_seed(cfg.seed)
    L = model.num_layers
    layers = list(range(L)) if cfg.layers is None else list(cfg.layers)
    if layers[-1] >= L:
        raise ValueError(f"{type(cfg).__name__}.layers: {model.name} has layers 0..{L - 1}, not {layers[-1]}.")
    if cfg.budget < 1 + cfg.popsize:
        raise ValueError(f"{name} needs a budget of at least popsize + 1 = {cfg.popsize + 1} calls "
                         "(one call evaluates the starting prompt).")
    train = BlackBoxLM(model, task, split.train, budget=cfg.budget, position=cfg.prompt_position,
                       use_cache=cfg.cache != "none")
    dev_api = BlackBoxLM(model, task, split.dev, position=cfg.prompt_position)
    scales = layer_scales(model, task, split.train, cfg.n_prompt_tokens, train.position)
    return task, train, dev_api, scales, LayerSearch(model, cfg, layers, scales, train)


def run_bbtv2(model, task, split, cfg: BBTv2Config | None = None, *, display: bool = True, callback=None,
              evaluate_test: bool = True) -> Result:
    """Tune a deep prompt with BBTv2 on split.train, select on split.dev, report split.test.

    Returns a :class:`Result` like ``run_bbt``'s; ``res.prompt`` is (layers, tokens, hidden) and
    ``res.history`` has one row per layer generation (with its ``layer`` and ``round``).
    callback(history) runs after every generation.
    """
    cfg = cfg or BBTv2Config.cpu_quick()
    if not isinstance(cfg, BBTv2Config):
        raise TypeError("run_bbtv2 needs a BBTv2Config (e.g. bk.BBTv2Config.cpu_quick()); for BBT use run_bbt.")
    t0 = time.perf_counter()
    task, train, dev_api, scales, search = setup(model, task, split, cfg)
    calibrate = calib.for_objective(cfg.calibration, model, task, split.train, train.position)

    def score(out):
        return candidate_losses(calibrate(out.logits), out.labels, cfg.loss, task)

    def dev() -> float:
        logits = calib.apply_for_prompt(cfg.calibration, model, task, split.train, search.deep,
                                        dev_api(search.deep[None]).logits[0], train.position)
        return task.score(logits.argmax(-1).numpy(), dev_api.labels.numpy())

    losses, metrics = score(train(search.deep[None]))  # one call: the start, z = 0 everywhere (the manual prompt)
    search.incumbent = float(losses[0])
    best_dev, best_Z = dev(), search.Z.copy()
    history = [{"calls": train.calls, "round": 0, "layer": None, "best_loss": search.incumbent,
                "mean_loss": search.incumbent, "incumbent_loss": search.incumbent,
                "train_metric": float(metrics[0]), "sigma": cfg.sigma, "dev_metric": best_dev,
                "seconds": time.perf_counter() - t0}]
    bar = _progress(cfg.budget, f"BBTv2 {task.name}") if display else None
    next_dev, rnd = cfg.eval_every, 0
    while train.calls + cfg.popsize <= cfg.budget and len(search.stopped) < len(search.layers):
        rnd += 1
        for i in range(len(search.layers)):  # one generation per layer, bottom to top
            if train.calls + cfg.popsize > cfg.budget:
                break
            if i in search.stopped:
                continue
            g0 = time.perf_counter()
            row = {"calls": 0, "round": rnd, **search.generation(i, score), "dev_metric": None}
            row["calls"] = train.calls
            if train.calls >= next_dev:
                next_dev = (train.calls // cfg.eval_every + 1) * cfg.eval_every
                row["dev_metric"] = dev()
                if row["dev_metric"] > best_dev:  # strictly better than everything before, z = 0 included
                    best_dev, best_Z = row["dev_metric"], search.Z.copy()
            row["seconds"] = time.perf_counter() - g0
            history.append(row)
            if bar is not None:
                bar.update(cfg.popsize)
                bar.set_postfix(layer=row["layer"], loss=f"{search.incumbent:.3f}", dev=f"{best_dev:.3f}")
            if callback is not None:
                callback(history)
    if bar is not None:
        bar.close()
    res = Result("bbtv2", task.name, model.name, asdict(cfg), best_Z, search.projs, cfg.n_prompt_tokens,
                 model.hidden_size, search.layers, model.num_layers, train.position, history, best_dev, None,
                 train.calls, 0.0, search.stop_reasons(rnd),
                 {"seconds_per_call": train.seconds_per_call, "cache_seconds": train.cache_seconds,
                  "layer_scales": scales.tolist(), "train_loss": search.incumbent})
    finish(res, model, task, split, cfg, evaluate_test)
    res.seconds = time.perf_counter() - t0
    return res
