"""Evolutionary zero-shot chain-of-thought (EoT; Jin, Liu & Tan, arXiv 2402.05376) and its baselines.

EoT, per problem, each step one generation call through :class:`~bbtkit.api.generate.GenerativeLM`:

    crossover  the LLM crosses over the two seed instructions (zero-shot CoT and plan-and-solve)
    mutation   the LLM mutates the crossover child
    selection  the LLM picks, of the four (two seeds, child, mutant), the instruction that suits this problem
    rewrite    the LLM rewrites the problem under that instruction
    reasoning  the LLM reasons step by step on the rewritten problem
    extraction a second call reads the answer out ("Therefore, the answer (arabic numerals) is")

The authors' code packs evolve–select–rewrite–solve into one prompt; this is the paper's sequence, one
call a step, with every step's input and output kept in the trace. Baselines: zero-shot (1 call),
zero-shot CoT and plan-and-solve (reasoning, then extraction: 2 calls). Problems go through a step
together, in batches, so the KV-cached generation fills the device.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
import time
from dataclasses import dataclass
from pathlib import Path

from ..api.blackbox import BudgetExceededError
from .evoprompt import extract_prompt
from ..fields import check_fields
from ..api.generate import GenerativeLM
from ..data.reasoning import ReasoningSet, extract_answer, is_correct
from ..tuning.reasoning_results import ReasoningResult, read, writable

ZERO_SHOT_COT = "Let's think step by step."
PLAN_AND_SOLVE = ("Let's first understand the problem and devise a plan to solve the problem. "
                  "Then, let's carry out the plan and solve the problem step by step.")
TRIGGERS = {"number": "Therefore, the answer (arabic numerals) is", "yes_no": "Therefore, the answer (Yes or No) is",
            "letters": "Therefore, the answer is", "choice": "Therefore, among A through E, the answer is"}
CROSSOVER = ("Cross over the following two instructions for solving a problem: write one new instruction that "
             "combines them, bracketed with <prompt> and </prompt>.\nInstruction 1: {a}\nInstruction 2: {b}\n"
             "Problem: {question}")
MUTATE = ("Mutate the following instruction for solving a problem: change its wording or add a useful step. "
          "Write the new instruction bracketed with <prompt> and </prompt>.\nInstruction: {p}\nProblem: {question}")
SELECT = ("Problem: {question}\nWhich of these instructions suits this problem best?\n{numbered}\n"
          "Answer with the number of the instruction only.")
REWRITE = ("Rewrite the following problem so that it is clear and complete, following this instruction: "
           "{instruction}\nKeep every number and fact. Write only the rewritten problem.\nProblem: {question}")
REASON = "Q: {question}\nA: {instruction}"
EXTRACT = "Q: {question}\nA: {instruction} {reasoning}\n{trigger}"
CALLS_PER_PROBLEM = {"zero-shot": 1, "zero-shot-cot": 2, "plan-and-solve": 2, "eot": 6}  # method -> API calls per problem


@dataclass(frozen=True)
class EoTConfig:
    """Token limits of each step, the seed instructions and the batch of problems that go through a step
    together. The paper decodes greedily with 256 reasoning tokens (``paper()``)."""

    seeds: tuple[str, ...] = (ZERO_SHOT_COT, PLAN_AND_SOLVE)  # the two instructions crossed over
    evolve_tokens: int = 64      # crossover and mutation
    select_tokens: int = 8
    rewrite_tokens: int = 128
    reason_tokens: int = 256
    extract_tokens: int = 16
    temperature: float = 0.0     # 0: greedy, as the paper
    batch: int = 8               # problems through one step together
    seed: int = 0

    @classmethod
    def cpu_quick(cls, **kw) -> "EoTConfig":
        """Shorter generations for a 2-core CPU (a reasoning of 128 tokens; the 135M model rarely needs more),
        16 problems a batch (on 2 cores a batch of 16 writes 4x the tokens per second of one prompt)."""
        return cls(**{**dict(evolve_tokens=48, rewrite_tokens=96, reason_tokens=128, batch=16), **kw})

    @classmethod
    def paper(cls, **kw) -> "EoTConfig":
        return cls(**kw)

    def __post_init__(self):
        check_fields(self, positive=("evolve_tokens", "select_tokens", "rewrite_tokens", "reason_tokens",
                                     "extract_tokens", "batch"), nonneg=("temperature", "seed"))
        if len(self.seeds) != 2 or not all(s.strip() for s in self.seeds):
            raise ValueError(f"EoTConfig: seeds: EoT crosses over exactly two seed instructions (non-empty strings); "
                             f"got {self.seeds!r}.")


def _step(trace: dict, name: str, prompt: str, output: str, **extra) -> None:
    trace["steps"].append({"step": name, "prompt": prompt, "output": output, **extra})


class _Runner:
    """The steps of one method over a batch of problems; each step is one batched generation."""

    def __init__(self, gen: GenerativeLM, kind: str, cfg: EoTConfig):
        self.gen, self.kind, self.cfg = gen, kind, cfg

    def ask(self, traces: list[dict], prompts: list[str], tokens: int, stop=None) -> list[str]:
        """The replies. A prompt grown too long for the model (from earlier steps' text) is not sent, nor
        charged: its reply reads as empty, which each step handles, and its trace's "refused" says why."""
        why = [self.gen.refusal(p, tokens) for p in prompts]
        sent = [p for p, w in zip(prompts, why) if w is None]
        replies = iter(self.gen(sent, max_new_tokens=tokens, temperature=self.cfg.temperature, stop=stop,
                                seed=self.cfg.seed + self.gen.calls) if sent else [])
        for t, w in zip(traces, why):
            if w is not None:
                t.setdefault("refused", []).append(w)
        return [next(replies) if w is None else "" for w in why]

    def evolve(self, traces: list[dict]) -> None:
        a, b = self.cfg.seeds
        prompts = [CROSSOVER.format(a=a, b=b, question=t["question"]) for t in traces]
        for t, p, out in zip(traces, prompts, self.ask(traces, prompts, self.cfg.evolve_tokens)):
            t["child"] = extract_prompt(out) or a
            _step(t, "crossover", p, out, instruction=t["child"])
        prompts = [MUTATE.format(p=t["child"], question=t["question"]) for t in traces]
        for t, p, out in zip(traces, prompts, self.ask(traces, prompts, self.cfg.evolve_tokens)):
            t["mutant"] = extract_prompt(out) or t["child"]
            _step(t, "mutation", p, out, instruction=t["mutant"])

    def select(self, traces: list[dict]) -> None:
        options = [[*self.cfg.seeds, t.pop("child"), t.pop("mutant")] for t in traces]
        prompts = [SELECT.format(question=t["question"], numbered="\n".join(f"{i}. {o}" for i, o in enumerate(opts, 1)))
                   for t, opts in zip(traces, options)]
        for t, opts, p, out in zip(traces, options, prompts, self.ask(traces, prompts, self.cfg.select_tokens)):
            pick = extract_answer(out, "number")
            ok = pick in [str(k) for k in range(1, len(opts) + 1)]
            t["instruction"] = opts[int(pick) - 1] if ok else opts[-1]  # unreadable: the mutant, EoT's own
            _step(t, "selection", p, out, options=opts, instruction=t["instruction"], parsed=ok)

    def rewrite(self, traces: list[dict]) -> None:
        prompts = [REWRITE.format(instruction=t["instruction"], question=t["question"]) for t in traces]
        for t, p, out in zip(traces, prompts, self.ask(traces, prompts, self.cfg.rewrite_tokens)):
            t["rewritten"] = out.strip() or t["question"]
            _step(t, "rewrite", p, out)

    def reason(self, traces: list[dict]) -> None:
        prompts = [REASON.format(question=t.get("rewritten", t["question"]), instruction=t["instruction"]) for t in traces]
        for t, p, out in zip(traces, prompts, self.ask(traces, prompts, self.cfg.reason_tokens)):
            t["reasoning"] = out.strip()
            _step(t, "reasoning", p, out)

    def extract(self, traces: list[dict]) -> None:
        trigger = TRIGGERS[self.kind]
        prompts = [EXTRACT.format(question=t.get("rewritten", t["question"]), instruction=t["instruction"],
                                  reasoning=t.pop("reasoning"), trigger=trigger) for t in traces]
        for t, p, out in zip(traces, prompts, self.ask(traces, prompts, self.cfg.extract_tokens, stop=["\n\n"])):
            t["prediction"] = extract_answer(out, self.kind)
            _step(t, "extraction", p, out)

    def zero_shot(self, traces: list[dict]) -> None:
        prompts = [f"Q: {t['question']}\nA: {TRIGGERS[self.kind]}" for t in traces]
        for t, p, out in zip(traces, prompts, self.ask(traces, prompts, self.cfg.extract_tokens, stop=["\n\n"])):
            t["instruction"], t["prediction"] = TRIGGERS[self.kind], extract_answer(out, self.kind)
            _step(t, "answer", p, out)

    def run(self, method: str, traces: list[dict]) -> None:
        if method == "zero-shot":
            return self.zero_shot(traces)
        if method == "eot":
            self.evolve(traces)
            self.select(traces)
            self.rewrite(traces)
        else:
            for t in traces:
                t["instruction"] = ZERO_SHOT_COT if method == "zero-shot-cot" else PLAN_AND_SOLVE
        self.reason(traces)
        self.extract(traces)


def _start(model, problems: ReasoningSet, method: str, cfg: EoTConfig, path, budget) -> ReasoningResult:
    """The run so far: a new one, or the one saved at path (checked before the first call is spent)."""
    if method not in CALLS_PER_PROBLEM:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(CALLS_PER_PROBLEM)}.")
    if not isinstance(problems, ReasoningSet) or len(problems) == 0:
        raise ValueError("problems must be a non-empty ReasoningSet, e.g. bk.load_reasoning('multiarith', n=20).")
    if not isinstance(cfg, EoTConfig):
        raise ValueError(f"cfg must be an EoTConfig (or None: EoTConfig.cpu_quick()), not {type(cfg).__name__}.")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 1):
        raise ValueError(f"budget must be a whole number of API calls, at least 1 (or None), not {budget!r}.")
    res = ReasoningResult(method, problems.name, problems.kind, model.name, json.loads(json.dumps(dataclasses.asdict(cfg))))
    if path is None or not writable(path).is_file():
        return res
    old, verified = read(path)
    same = (old.method, old.dataset, old.model_name, old.config) == (method, problems.name, model.name, res.config)
    if not (same and [t["question"] for t in old.traces] == [p.question for p in problems.problems[:old.n]]):
        raise ValueError(f"{path} holds another run ({old.method} on {old.dataset} with {old.model_name}, or "
                         "other settings or problems); pass a new path, or delete that file to start over.")
    if not verified and old.calls != old.recorded_calls:
        raise ValueError(f"{path} has no checksum (an older save) and its {old.calls} calls are not the "
                         f"{old.recorded_calls} its traces record, so they cannot be checked; delete it to start over.")
    return dataclasses.replace(old, stop="done")


def _batch(runner: _Runner, method: str, problems: ReasoningSet, s: int, res: ReasoningResult, t0: float, path) -> int:
    """Problems s, s+1, ... through every step of the method, into res (saved at path); returns how many."""
    gen, kind = runner.gen, problems.kind
    batch = [{"question": p.question, "answer": p.answer, "steps": []} for p in problems.problems[s:s + runner.cfg.batch]]
    before = (gen.prompt_tokens, gen.completion_tokens)
    runner.run(method, batch)
    for t in batch:
        t["correct"] = is_correct(t["prediction"], t["answer"], kind)
    res.traces += batch
    res.calls, res.seconds = gen.calls, time.perf_counter() - t0
    res.prompt_tokens += gen.prompt_tokens - before[0]
    res.completion_tokens += gen.completion_tokens - before[1]
    if path is not None:
        res.save(path)
    return len(batch)


def _bar(total: int, desc: str, done: int):
    from ..tuning.progress import Progress

    bar = Progress(total, desc, "problem")
    bar.update(done)
    return bar


def run_reasoning(model, problems: ReasoningSet, method: str = "eot", cfg: EoTConfig | None = None, *,
                  path: str | Path | None = None, display: bool = True, budget: int | None = None) -> ReasoningResult:
    """Run a method ("zero-shot", "zero-shot-cot", "plan-and-solve" or "eot") over a reasoning set.

    path: a JSON file saved after every batch; a run with the same method, set, model and config resumes
    from it (an interrupted run keeps what it found; a file edited since is refused). budget: API calls
    (default: exactly what the set needs, ``CALLS_PER_PROBLEM[method]`` per problem)."""
    cfg = cfg or EoTConfig.cpu_quick()
    res = _start(model, problems, method, cfg, path, budget)
    gen = GenerativeLM(model, batch_size=cfg.batch)
    gen.calls, gen.budget = res.calls, budget if budget is not None else res.calls + CALLS_PER_PROBLEM[method] * (len(problems) - res.n)
    bar = _bar(len(problems), f"{method} on {problems.name}", res.n) if display else None
    t0, ok, runner = time.perf_counter() - res.seconds, False, _Runner(gen, problems.kind, cfg)
    try:
        for s in range(res.n, len(problems), cfg.batch):
            done = _batch(runner, method, problems, s, res, t0, path)
            if bar is not None:
                bar.update(done)
                bar.set_postfix(accuracy=f"{res.accuracy:.0%}")
        ok = True
    except (KeyboardInterrupt, BudgetExceededError) as err:
        res.stop = "interrupted" if isinstance(err, KeyboardInterrupt) else "budget"
        res.calls, res.seconds = gen.calls, time.perf_counter() - t0  # the unfinished batch's calls were spent
    finally:
        if bar is not None:
            bar.close(ok)
    if not ok and path is not None and res.n:
        res.save(path)
    return res


def run_eot(model, problems: ReasoningSet, cfg: EoTConfig | None = None, **kw) -> ReasoningResult:
    """EoT over a reasoning set (see the module docstring); ``run_reasoning`` runs its baselines."""
    return run_reasoning(model, problems, "eot", cfg, **kw)


def trace_text(trace: dict, width: int = 400) -> str:
    """One problem's trace as text: each step's input (cut to ``width`` characters) and output."""
    mark = "correct" if trace["correct"] else f"wrong (gold {trace['answer']})"
    lines = [f"QUESTION: {trace['question']}", f"PREDICTION: {trace['prediction']}, {mark}", ""]
    for s in trace["steps"]:
        prompt = s["prompt"] if len(s["prompt"]) <= width else s["prompt"][:width] + " […]"
        lines += [f"── {s['step']} " + "─" * max(0, 60 - len(s["step"])), "  in:  " + prompt.replace("\n", "\n       "),
                  "  out: " + s["output"].strip().replace("\n", "\n       ")]
        if s["step"] == "selection":
            lines.append(f"  → instruction: {s['instruction']}" + ("" if s["parsed"] else " (reply unreadable: the mutant)"))
    lines += [f"NOT SENT (read as an empty reply): {why}" for why in trace.get("refused", [])]
    return "\n".join(lines)
