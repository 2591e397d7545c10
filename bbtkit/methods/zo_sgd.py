"""ZO on BBT's space, through the API: ``run_zo`` searches BBT's z (p = p0 + A z) with zeroth-order SGD,
prior-guided or greedy ZO (``bbtkit.optim.zo``'s optimizer) instead of CMA-ES, with BBT's space, budget, loss, dev
selection and Result, so that ZO and CMA-ES compare at equal calls on the same z (the registry's ``zo_sgd``
and ``zo_gv``)."""
from __future__ import annotations

from dataclasses import dataclass

from .bbt import BBTConfig, run_shallow
from ..fields import check_fields
from ..optim.zo import FORMS, OPTIMIZERS, ZO, VectorParams


@dataclass(frozen=True)
class ZOConfig(BBTConfig):
    """BBT's space, budget, loss and dev selection (all of BBTConfig's fields), searched by ZO-SGD.

    sigma keeps its BBT meaning (it sets the normal projection's scale), so the space is BBT's own;
    popsize and bound are not used. eps: the perturbation size in z; lr: the step size; samples (M)
    and top (alpha): the prior-guided and greedy samples; form: "paper" or "code" (prior-guided);
    momentum: heavy-ball momentum (ZO-SGD with momentum when > 0).
    """

    optimizer: str = "zo-sgd"
    eps: float = 1.0
    lr: float = 20.0
    samples: int = 8
    top: float = 0.5
    form: str = "paper"
    momentum: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, positive=("eps",), nonneg=("lr", "momentum", "weight_decay"), at_least={"samples": 2},
                     between={"top": (0, 1)}, choices={"optimizer": OPTIMIZERS, "form": FORMS})
        super().__post_init__()  # BBT's fields, then the budget (ZO's own rule, below)
        if self.momentum >= 1:
            raise ValueError(f"ZOConfig: momentum must be below 1 (0 = plain ZO-SGD), not {self.momentum!r}.")
        if self.form == "code" and self.optimizer != "zo-gv":
            raise ValueError("ZOConfig: form='code' is the released code of prior-guided ZO: use it with "
                             "optimizer='zo-gv'.")
        sampled = self.optimizer != "zo-sgd" and self.form == "paper"
        if sampled and not (0 < self.top < 1 and int(self.top * self.samples) >= 1):
            raise ValueError(f"ZOConfig: top must be strictly between 0 and 1 with floor(top * samples) >= 1 for "
                             f"{self.optimizer}, not top={self.top} with samples={self.samples}.")

    def _check_optimizer(self) -> None:
        """ZO's estimators are checked with its other fields (``zo.OPTIMIZERS``)."""

    def _check_budget(self) -> None:
        """ZO has no population: the budget must cover one step (its samples, then the two-point estimate)."""
        step = 2 if self.optimizer == "zo-sgd" else (4 if self.form == "code" else self.samples + 2)
        if self.budget < step:
            raise ValueError(f"ZOConfig: budget ({self.budget}) must cover one step of {self.optimizer} ({step} "
                             "calls); popsize is not used by ZO. A smaller budget tunes nothing.")

    @classmethod
    def paper(cls, seed: int = 42, optimizer: str = "zo-sgd") -> "ZOConfig":
        """BBT's paper space and budget (L=50, d=500, 8000 calls); the ZO papers tune weights, not this
        space, so eps and lr are the CPU preset's."""
        return cls(seed=seed, optimizer=optimizer)

    @classmethod
    def cpu_quick(cls, seed: int = 42, optimizer: str = "zo-sgd") -> "ZOConfig":
        """BBT's cpu_quick space and budget (3 tokens, d = 100, 400 calls), so that ZO and CMA-ES compare
        at equal calls on the same z. eps = 1 (the projection maps a unit of z to alpha x the embeddings'
        scale) and lr = 20, the best of 0.5, 2, 5, 20 and 60 in 200-call runs of ZO-SGD and prior-guided
        ZO on SST-2 (seed 42): 60 made the training loss jump, 0.5 to 5 barely moved it."""
        base = BBTConfig.cpu_quick(seed)
        return cls(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, "optimizer": optimizer})


def make_zo(cfg: ZOConfig) -> ZO:
    return ZO(VectorParams(cfg.intrinsic_dim, momentum=cfg.momentum), cfg.optimizer, eps=cfg.eps, lr=cfg.lr,
              samples=cfg.samples, top=cfg.top, form=cfg.form, weight_decay=cfg.weight_decay, seed=cfg.seed)


def run_zo(model, task, split, cfg: ZOConfig | None = None, **kw):
    """ZO-SGD, prior-guided or greedy ZO on BBT's z (p = p0 + A z) through ``BlackBoxLM``: the same
    space, budget, loss, dev selection and Result as ``run_bbt``; ``cfg.optimizer`` picks the estimator."""
    cfg = cfg or ZOConfig.cpu_quick()
    return run_shallow(cfg.optimizer, make_zo, model, task, split, cfg, **kw)
