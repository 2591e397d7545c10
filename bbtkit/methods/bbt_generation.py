"""BBT for generation: a continuous prompt tuned through the API to make reference outputs likely.

The space and the optimizer are BBT's (z -> p = p0 + A z on the template's last tokens before the output,
searched by ``cfg.optimizer``); the API is the scoring call (``api.reference.ReferenceScorer``), which
returns each reference token's log-probability under each candidate prompt, teacher-forced, as services
with ``logprobs`` do. The loss is the mean negative log-likelihood per reference token over the training
problems; dev selection uses the same likelihood on the dev problems. What counts in the end is what the
model writes: greedy generations under the selected prompt, scored by exact match against the answers,
beside the same template without a prompt (z = 0).

Where this differs from the papers: BBT tuned classifiers only; tuning a continuous prompt for generation
through log-probabilities is one of the open problems the competition's report names.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from .bbt import BBTConfig, make_optimizer, make_projection
from ..api.published import value_scale
from ..api.reference import ReferenceScorer, generate_with_prompt
from ..data.reasoning import ReasoningSet, extract_answer, is_correct, load_reasoning
from ..data.splits import Example, Examples
from ..data.tasks import get_task
from ..fields import check_fields
from ..runtime import set_seed
from ..tuning.loop import tune
from ..tuning.reasoning_results import ReasoningResult
from ..tuning.spaces import ShallowPrompt


@dataclass(frozen=True)
class GenerationConfig(BBTConfig):
    """BBT's fields (space, optimizer, budget, dev every ``eval_every`` calls, seed: the train and dev
    problems and the optimizer), plus the template and the problems' split. The loss is the reference's
    mean token cross-entropy ("ce"), and there is no calibration (there are no label words)."""

    template: str = "Question: {text_a}\nAnswer: {mask}"
    train_size: int = 32           # problems the scoring call sees (drawn per seed)
    dev_size: int = 32             # problems for dev selection (drawn per seed)
    test_size: int = 100           # problems answered at the end (the same for every seed)
    max_new_tokens: int = 8        # greedy tokens per answer

    def __post_init__(self) -> None:
        check_fields(self, at_least={"train_size": 1, "dev_size": 1, "test_size": 1, "max_new_tokens": 1})
        super().__post_init__()
        if self.loss != "ce" or self.calibration is not None:
            raise ValueError("GenerationConfig: the loss is the reference's token cross-entropy (loss='ce') and "
                             f"there is no calibration (calibration=None); got loss={self.loss!r}, "
                             f"calibration={self.calibration!r}.")
        if "{text_a}" not in self.template or not self.template.rstrip().endswith("{mask}"):
            raise ValueError("GenerationConfig: template must hold the question as {text_a} and end with {mask}, "
                             f"where the answer begins, e.g. 'Question: {{text_a}}\\nAnswer: {{mask}}'; "
                             f"got {self.template!r}.")

    @classmethod
    def cpu_quick(cls, seed: int = 42) -> "GenerationConfig":
        """BBT's cpu_quick space (the 3 template tokens before the answer, d = 100, popsize 10), 200 calls."""
        base = BBTConfig.cpu_quick(seed)
        return cls(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, "budget": 200})

    @classmethod
    def paper(cls, seed: int = 42) -> "GenerationConfig":
        """BBT's paper space and budget (50 tokens, d = 500, popsize 20, 8000 calls); 200 train problems."""
        return cls(seed=seed, train_size=200, dev_size=100, test_size=500)


def split_problems(problems: ReasoningSet, cfg: GenerationConfig) -> tuple[ReasoningSet, ReasoningSet, ReasoningSet]:
    """(train, dev, test): test is a fixed sample (seed 0), train and dev are drawn per seed from the rest."""
    n = len(problems)
    if cfg.train_size + cfg.dev_size + cfg.test_size > n:
        raise ValueError(f"{problems.name} has {n} problems, fewer than train_size + dev_size + test_size = "
                         f"{cfg.train_size + cfg.dev_size + cfg.test_size}; ask for fewer.")
    test = set(np.random.RandomState(0).choice(n, cfg.test_size, replace=False).tolist())
    rest = np.random.RandomState(cfg.seed).permutation([i for i in range(n) if i not in test])
    pick = lambda idx: ReasoningSet(problems.name, problems.kind, [problems[int(i)] for i in sorted(idx)])  # noqa: E731
    return pick(rest[:cfg.train_size]), pick(rest[cfg.train_size:cfg.train_size + cfg.dev_size]), pick(sorted(test))


def as_examples(problems: ReasoningSet) -> Examples:
    return Examples([Example(p.question, None, 0) for p in problems], name=problems.name)


def answer(model, task, problems: ReasoningSet, prompt, cfg: GenerationConfig, method: str) -> ReasoningResult:
    """Greedy answers to ``problems`` under ``prompt`` (None: the template alone), one call each, scored."""
    t0 = time.perf_counter()
    outs = generate_with_prompt(model, task, as_examples(problems), prompt, max_new_tokens=cfg.max_new_tokens)
    traces = []
    for p, out in zip(problems, outs):
        pred = extract_answer(out, problems.kind)
        traces.append({"question": p.question, "answer": p.answer, "prediction": pred,
                       "correct": is_correct(pred, p.answer, problems.kind),
                       "steps": [{"step": "answer", "prompt": _asked(cfg.template, p.question, prompt), "output": out}]})
    return ReasoningResult(method, problems.name, problems.kind, model.name, dataclasses.asdict(cfg), traces,
                           calls=len(problems), seconds=time.perf_counter() - t0)


def _asked(template: str, question: str, prompt) -> str:
    """The text the model reads for one problem (the template with the question), and whether a prompt was added."""
    text = template.replace("{text_a}", question).split("{mask}")[0].rstrip()
    return text + ("" if prompt is None else f"   [+ a tuned prompt on the last {len(prompt)} tokens]")


def mean_nll(scores) -> np.ndarray:
    """(pop, examples, T) log-probabilities -> (pop,) mean negative log-likelihood per reference token."""
    s = np.asarray(scores, dtype=float)
    return -np.nanmean(s.reshape(len(s), -1), axis=1)


def run_bbt_generation(model, problems, cfg: GenerationConfig | None = None, *, display: bool = False, callback=None):
    """Tune BBT's prompt on ``problems``' training split to make the answers likely; answer the test split
    with and without it. Returns (tuned, untuned, trace): two ReasoningResults and the loop's Trace."""
    cfg = cfg or GenerationConfig.cpu_quick()
    problems = load_reasoning(problems) if isinstance(problems, str) else problems
    set_seed(cfg.seed)
    train, dev, test = split_problems(problems, cfg)
    task = get_task("sst2").with_template(cfg.template, model.family, ("yes", "no"))  # the words are not read
    api = ReferenceScorer(model, task, as_examples(train), [p.answer for p in train], cfg.budget)
    dev_api = ReferenceScorer(model, task, as_examples(dev), [p.answer for p in dev])
    n, H = cfg.n_prompt_tokens, model.hidden_size
    space = ShallowPrompt(make_projection(cfg, model, n * H, value_scale(model), cfg.seed), n, H)
    trace = tune(lambda X: mean_nll(api(space.candidates(X))), make_optimizer(cfg), budget=cfg.budget, api=api,
                 dev=lambda z: -float(mean_nll(dev_api(space.prompt(z)[None]))[0]), eval_every=cfg.eval_every,
                 callback=callback, display=display, desc=f"BBT for generation {problems.name}")
    tuned = answer(model, task, test, space.prompt(trace.best_z), cfg, "bbt_generation")
    tuned.calls += api.calls
    return tuned, answer(model, task, test, None, cfg, "template"), trace
