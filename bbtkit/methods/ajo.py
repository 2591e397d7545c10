"""Alternating Joint Optimization (AJO), the 1st Gradient-Free Tuning Competition's winner
(National Science Review 10(6) nwad124, 2023), and its feature-only baseline.

The black-box API returns, with the label-word logits q, the hidden state h at the answer
position. AJO trains a small local classifier f on h by gradient descent (f is ours; the language
model is never differentiated, and its weights are never read) and predicts with the mixture

    p(y | x) = mix * softmax(W q) + (1 - mix) * softmax(f(h)),     mix = 0.5,

where W q is the champion's calibration (``bbtkit.tuning.calibration``). Training alternates:

1. one API call returns q and h for the incumbent deep prompt; f takes ``epochs`` passes of Adam
   (lr 3e-4) over the training set on the joint loss -log p(y | x), with q fixed;
2. BBTv2's per-layer CMA-ES (``optimizers.LayerwiseCMA``) tunes the prompts for ``phase_generations``
   layer generations on the same joint loss, with f fixed;

and again, until the API budget is spent. The two parts help each other through h: the prompts
move h to where f separates the classes, and f covers what the calibrated label words miss.

The feature-only baseline (the BBT paper's "Feature-MLP", ``run_feature_mlp``) is f alone on the
manual prompt's h: one API call, then gradient descent, no prompt tuning.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ..tuning import calibration as calib
from ..api.blackbox import BlackBoxLM, label_logits
from .bbtv2 import BBTv2Config, setup
from ..fields import check_fields
from ..optim.alternating import Alternating
from ..tuning.descent import descend
from ..tuning.heads import HEADS, head_spec, joint_log_probs, make_head, mixture, train_head  # noqa: F401
from ..tuning.loop import to_result, tune
from ..tuning.objectives import DevScore, candidate_losses
from ..tuning.result_builder import build_result
from ..tuning.results import Result
from ..runtime import set_seed
from ..data.tasks import get_task

# The report's API budgets per task (paper_budget gives the largest to the tasks it did not run).
PAPER_BUDGETS = {"sst2": 3000, "dbpedia": 3000, "qqp": 8000, "qnli": 8000, "snli": 8000}


def paper_budget(task) -> int:
    """The competition report's API budget for a task: 3000 or 8000; 8000 for a task it did not run."""
    return PAPER_BUDGETS.get(get_task(task).name, max(PAPER_BUDGETS.values()))


@dataclass(frozen=True)
class AJOConfig(BBTv2Config):
    """Hyperparameters of one AJO run: BBTv2's fields (per-layer CMA-ES), plus the classifier's.

    The prompt search is BBTv2's; ``budget`` counts every API call, the classifier's included.
    """

    calibration: str | None = "champion"  # W q in the mixture: "champion", "contextual" or None
    mix: float = 0.5                # weight of the calibrated LM prediction in the mixture (the report: 0.5)
    head: str = "mlp"               # the local classifier f: "linear" or "mlp" (one hidden layer)
    head_width: int = 128           # the MLP's hidden units
    lr: float = 3e-4                # Adam's learning rate for f (the report: 3e-4)
    epochs: int = 3                 # passes over the training set per classifier phase (the report: 3)
    batch_size: int = 8             # examples per gradient step of f
    phase_generations: int | None = None  # CMA-ES layer generations between classifier phases;
                                          # None = one round over all tuned layers
    feature_epochs: int = 100       # run_feature_mlp: epochs of f alone (best dev epoch kept)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, positive=("lr",), between={"mix": (0.0, 1.0)}, choices={"head": HEADS},
                     at_least={"head_width": 1, "epochs": 1, "feature_epochs": 1, "batch_size": 1, "phase_generations": 1})

    @classmethod
    def paper(cls, task: str = "sst2", seed: int = 42) -> "AJOConfig":
        """The report's setting on BBTv2's paper preset: budgets 3000 (SST-2, DBPedia) or 8000
        (QQP, QNLI, SNLI), mix 0.5, lr 3e-4, 3 epochs. For a GPU with RoBERTa-large."""
        base = asdict(BBTv2Config.paper(seed))  # its calibration is None: AJO's mixture needs W q
        base.update(budget=paper_budget(task), calibration="champion")
        return cls(**base)

    @classmethod
    def cpu_quick(cls, seed: int = 42) -> "AJOConfig":
        """BBTv2's cpu_quick (400 calls) with a classifier phase every 10 layer generations."""
        return cls(**{**asdict(BBTv2Config.cpu_quick(seed)), "calibration": "champion", "phase_generations": 10})


# --- f alone -----------------------------------------------------------------------------------------
def fit_head(cfg: AJOConfig, task, hidden: torch.Tensor, labels, dev_hidden: torch.Tensor, dev_labels,
             desc: str | None = None) -> tuple[nn.Module, list[dict], float]:
    """f alone (mix 0) on fixed hidden states (n, H): ``cfg.feature_epochs`` epochs of Adam, keeping
    the epoch whose dev metric is strictly the best so far. Returns (f, one row per epoch, best dev).

    The Feature-MLP's training; notebook 06 also uses it on a tuned prompt's hidden states.
    desc: a progress bar's label (None: no bar).
    """
    task = get_task(task)
    labels = torch.as_tensor(labels).long()
    head = make_head(cfg.head, hidden.shape[-1], task.num_classes, cfg.head_width, cfg.seed)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    unused = torch.zeros(len(labels), task.num_classes)  # mix 0: the LM's probabilities do not enter

    def epoch(i: int) -> dict:
        loss = train_head(head, opt, hidden, unused, labels, 0.0, 1, cfg.batch_size, gen)
        with torch.no_grad():
            return {"epoch": i, "head_loss": loss,
                    "train_metric": task.score(head(hidden.float()).argmax(-1).numpy(), labels.numpy())}

    def dev() -> float:
        return task.score(head(dev_hidden.float()).argmax(-1).numpy(), dev_labels)

    found = descend(epoch, cfg.feature_epochs, score=dev, snapshot=lambda: copy.deepcopy(head.state_dict()),
                    desc=desc, unit="epoch")
    head.load_state_dict(found.best)
    return head, found.history, found.best_dev


# --- predictions of a result --------------------------------------------------------------------
@torch.no_grad()
def predict_parts(model, task, examples, res: Result) -> dict[str, torch.Tensor]:
    """Probabilities (n, classes) of an AJO or Feature-MLP result on examples: ``"joint"`` (the
    mixture), ``"lm"`` (the calibrated label words) and ``"classifier"`` (f alone)."""
    task = get_task(task)
    if res.classifier is None:
        raise ValueError(f"This {res.method} result has no classifier; predict_parts is for AJO and Feature-MLP.")
    logits, hidden = label_logits(model, task, examples, res.prompt, position=res.position, return_hidden=True)
    cal = res.calibration
    lm = torch.softmax(cal.apply(logits) if cal is not None else logits, -1)
    res.classifier.eval()
    f = torch.softmax(res.classifier(hidden.float()), -1)
    mix = res.head_spec["mix"]
    return {"joint": mix * lm + (1 - mix) * f, "lm": lm, "classifier": f}


def evaluate_parts(model, task, examples, res: Result) -> dict[str, float]:
    """The task's metric of the joint prediction and of each part on examples."""
    task = get_task(task)
    labels = [ex.label for ex in examples]
    return {k: task.score(p.argmax(-1).numpy(), labels) for k, p in predict_parts(model, task, examples, res).items()}


# --- AJO --------------------------------------------------------------------------------------------
class JointLoss:
    """AJO's objective: the loss of the mixture's log-probabilities, with the local classifier f,
    its Adam state and its shuffling generator. ``fit(out)`` is the classifier phase; ``state``,
    ``load_state`` and ``snapshot`` let the tuning loop checkpoint f and keep it at the best dev."""

    def __init__(self, cfg: AJOConfig, task, hidden: int, calibrate):
        self.cfg, self.task, self.calibrate = cfg, task, calibrate
        self.head = make_head(cfg.head, hidden, task.num_classes, cfg.head_width, cfg.seed)
        self.adam = torch.optim.Adam(self.head.parameters(), lr=cfg.lr)
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def __call__(self, out) -> tuple[np.ndarray, np.ndarray]:
        return candidate_losses(self.predict(self.calibrate(out.logits), out.hidden), out.labels, self.cfg.loss,
                                self.task)

    def predict(self, lm_logits: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return joint_log_probs(lm_logits, hidden, self.head, self.cfg.mix)

    def fit(self, out) -> float:
        """Gradient descent on f from one API output (q and h of the incumbent), q fixed."""
        lm_probs = torch.softmax(self.calibrate(out.logits)[0], -1)
        return train_head(self.head, self.adam, out.hidden[0], lm_probs, out.labels, self.cfg.mix, self.cfg.epochs,
                          self.cfg.batch_size, self.gen)

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {f"head.{k}": v.detach().clone() for k, v in self.head.state_dict().items()}

    def load_snapshot(self, tensors: dict) -> None:
        self.head.load_state_dict({k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")})

    def state(self) -> dict[str, torch.Tensor]:
        out = {**self.snapshot(), "gen": self.gen.get_state()}
        for i, st in self.adam.state_dict()["state"].items():
            out.update({f"adam.{i}.{k}": torch.as_tensor(v) for k, v in st.items()})
        return out

    def load_state(self, tensors: dict) -> None:
        self.load_snapshot(tensors)
        self.gen.set_state(tensors["gen"])
        sd = self.adam.state_dict()
        sd["state"] = {}
        for key, v in tensors.items():
            if key.startswith("adam."):
                _, i, name = key.split(".", 2)
                sd["state"].setdefault(int(i), {})[name] = v
        self.adam.load_state_dict(sd)


def run_ajo(model, task, split, cfg: AJOConfig | None = None, *, display: bool = True, callback=None,
            evaluate_test: bool = True, checkpoint=None, resume=None) -> Result:
    """Alternate the classifier f (gradient descent) and BBTv2's per-layer CMA-ES on the joint loss.

    Returns a :class:`Result` like ``run_bbtv2``'s, plus ``res.classifier`` (f, saved with the
    result) and ``res.test_parts``: the test metric of the mixture, of the calibrated LM
    alone and of f alone. History rows with ``phase == "classifier"`` are f's updates.
    """
    cfg = cfg or AJOConfig.cpu_quick()
    if not isinstance(cfg, AJOConfig):
        raise TypeError("run_ajo needs an AJOConfig (e.g. bk.AJOConfig.cpu_quick()).")
    if cfg.budget < 2 + cfg.popsize:
        raise ValueError(f"AJO needs a budget of at least popsize + 2 = {cfg.popsize + 2} calls (one classifier "
                         "phase and one CMA-ES generation).")
    t0 = time.perf_counter()
    p = setup(model, task, split, cfg, name="AJO")
    joint = JointLoss(cfg, p.task, model.hidden_size,
                      calib.for_objective(cfg.calibration, model, p.task, split.train, p.train.position))

    def classifier_phase():  # one call for the incumbent's q and h, then f's epochs
        out = p.space.ask_point(p.train, p.opt.Z, return_hidden=True)
        head_loss = joint.fit(out)
        losses, metrics = joint(out)  # the incumbent under the new f
        inc = float(losses[0])
        return {"calls": p.train.calls, "round": p.opt.round, "layer": None, "phase": "classifier",
                "head_loss": head_loss, "best_loss": inc, "mean_loss": inc, "incumbent_loss": inc,
                "train_metric": float(metrics[0]), "sigma": None, "dev_metric": None}, inc

    dev = DevScore(p.space, p.dev_api, p.task, model, split.train, cfg.calibration, p.train.position, joint.predict)
    opt = Alternating(p.opt, classifier_phase, cfg.phase_generations or len(p.space.layers), learned=joint)
    trace = tune(lambda Z: joint(p.space.ask(p.train, Z, return_hidden=True)), opt, budget=cfg.budget,
                 api=p.train, dev=dev, eval_every=cfg.eval_every,
                 callback=callback, display=display, desc=f"AJO {p.task.name}", checkpoint=checkpoint,
                 resume=resume, fingerprint={"method": "ajo", **asdict(cfg)}, select_se=cfg.select_se)
    if trace.best_state is not None:
        joint.load_snapshot(trace.best_state)  # f as it was at the selected prompt
    extra = {"cache_seconds": p.train.cache_seconds, "layer_scales": p.scales.tolist(), "train_loss": p.opt.incumbent,
             "head": head_spec(cfg, model.hidden_size, p.task.num_classes), **({"notes": p.notes} if p.notes else {})}
    return to_result("ajo", model, p.task, split, cfg, p.space, trace, p.train, t0, evaluate_test=evaluate_test,
                     extra=extra, classifier=joint.head, score_test=_score_parts)


def _score_parts(res: Result, model, task, split) -> None:
    """The test metric of the mixture, and of each part beside it."""
    parts = evaluate_parts(model, task, split.test, res)
    res.test_metric, res.extra["test_parts"] = parts["joint"], parts


# --- the feature-only baseline -----------------------------------------------------------------------
def run_feature_mlp(model, task, split, cfg: AJOConfig | None = None, *, display: bool = True,
                    evaluate_test: bool = True) -> Result:
    """The BBT paper's Feature-MLP: f alone on the manual prompt's answer hidden states.

    One API call returns the training set's h; f is trained by gradient descent for
    ``cfg.feature_epochs`` epochs and the epoch with the best dev metric is kept. No prompt is
    tuned, so the result's prompt is None (the manual template) and its mixture weight is 0.
    """
    cfg = cfg or AJOConfig.cpu_quick()
    task = get_task(task)
    t0 = time.perf_counter()
    set_seed(cfg.seed)
    train = BlackBoxLM(model, task, split.train, budget=1, position=cfg.prompt_position)
    out = train(return_hidden=True)
    _, dev_hidden = label_logits(model, task, split.dev, position=train.position, return_hidden=True)
    head, rows, best_dev = fit_head(cfg, task, out.hidden[0], out.labels, dev_hidden, [ex.label for ex in split.dev],
                                    desc=f"Feature-MLP {task.name}" if display else None)
    res = build_result("feature_mlp", model, task, cfg, z=np.zeros((0, cfg.intrinsic_dim)), n_tokens=cfg.n_prompt_tokens,
                       position=train.position, history=[{"calls": train.calls, **row} for row in rows], dev=best_dev,
                       calls=train.calls, stop={"epochs": cfg.feature_epochs}, classifier=head,
                       extra={"head": {**head_spec(cfg, model.hidden_size, task.num_classes), "mix": 0.0}})
    if evaluate_test:
        _score_parts(res, model, task, split)
    res.seconds = time.perf_counter() - t0
    return res
