"""EvoPrompt (Guo et al., ICLR 2024): a genetic algorithm, or differential evolution, over instructions,
with the language model itself as the variation operator and the dev metric as the fitness.

    instruction → template "{instruction}\\n<the task's template>" → dev metric through BlackBoxLM (1 call)
    GA:  two parents by roulette wheel on fitness → the LLM crosses them over and mutates the result
         (1 generation call) → the next population is the best N of parents and children
    DE:  for each member p_i: the LLM mutates the parts where two random members differ, combines them
         with the best member, and crosses that over with p_i; the child replaces p_i if it scores higher

The optimizer keeps an archive of every instruction it has seen; a candidate is its index in the
archive, so the one loop (``tune``) runs text search as it runs CMA-ES, and an instruction seen before
is never evaluated (or charged) again. Generation calls and fitness calls are both API calls.
An operator's reply is untrusted: a child that would break the template (``{mask}``, ``{}``, ``{foo}``)
is discarded and counted, its last parent stands in (as for an empty reply), and the run goes on.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from ..api.blackbox import BlackBoxLM, evaluate
from ..fields import check_fields
from ..api.generate import GenerativeLM
from ..tuning.loop import tune
from ..tuning.result_builder import build_result
from ..tuning.results import Result
from ..runtime import set_seed
from ..data.tasks import get_task

GA_TEMPLATE = """Please follow the instruction step-by-step to generate a better prompt.
1. Cross over the following prompts and generate a new prompt:
Prompt 1: Tell whether the review is positive or negative.
Prompt 2: Read the movie review and give its sentiment.
2. Mutate the prompt generated in Step 1 and generate a final prompt bracketed with <prompt> and </prompt>.

1. Crossover prompt: Read the review and tell whether its sentiment is positive or negative.
2. <prompt>Decide if the feeling of this movie review is positive or negative.</prompt>

Please follow the instruction step-by-step to generate a better prompt.
1. Cross over the following prompts and generate a new prompt:
Prompt 1: {a}
Prompt 2: {b}
2. Mutate the prompt generated in Step 1 and generate a final prompt bracketed with <prompt> and </prompt>.

1. Crossover prompt:"""

DE_TEMPLATE = """Please follow the instruction step-by-step to generate a better prompt.
1. Identify the different parts between Prompt 1 and Prompt 2:
Prompt 1: {a}
Prompt 2: {b}
2. Randomly mutate the different parts.
3. Combine the different parts with Prompt 3, selectively replace it with the different parts in Step 2 and generate a new prompt.
Prompt 3: {best}
4. Cross over the prompt in Step 3 with the following basic prompt and generate a final prompt bracketed with <prompt> and </prompt>:
Basic Prompt: {base}"""

PARAPHRASE = ("Generate a variation of the following instruction while keeping its meaning. Write the new "
              "instruction bracketed with <prompt> and </prompt>.\nInstruction: {p}")


def extract_prompt(text: str, limit: int = 300) -> str | None:
    """The instruction in an operator's reply: what is bracketed with <prompt> and </prompt> (the closing tag
    may be cut off), else the last non-empty line; quotes and a "Prompt:" label are dropped. None if empty."""
    m = re.search(r"<prompt>(.*?)(?:</prompt>|$)", text, re.DOTALL | re.IGNORECASE)
    found = m.group(1) if m else next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
    found = re.sub(r"^\s*(?:\d\.\s*)?(?:final |new |basic )?prompt(?:\s*\d+)?\s*:\s*", "", found.strip(), flags=re.IGNORECASE)
    found = " ".join(found.strip().strip("\"'“”").split())[:limit]
    return found or None


_FIELD = re.compile(r"\{(\w*)\}")  # as a task's template reads its fields


def instruction_problem(instruction: str) -> str | None:
    """Why an instruction cannot go before a task's template (None if it can): the template's only fields are
    {text_a}, {text_b} and one {mask}, so any other {field}, {} or a second {mask} would break it."""
    bad = sorted(set(_FIELD.findall(instruction)) - {"text_a", "text_b"})
    return (f"it holds {', '.join('{' + b + '}' for b in bad)}, but the template it goes before may use only "
            "{text_a}, {text_b} and its own {mask}") if bad else None


def with_instruction(task, instruction: str, family: str):
    """The task with the instruction before its template (a blank line between, for a causal LM)."""
    sep = "\n" if family == "causal" else " "
    return task.with_template(instruction + sep + task.template(family), family, task.words(family))


def default_instructions(task) -> list[str]:
    """Hand-written starting instructions for any classification task, from its class names."""
    names = ", ".join(task.class_names[:-1]) + " or " + task.class_names[-1]
    return [f"Classify the text as {names}.", f"Read the input and decide: is it {names}?",
            f"Your task is to label each example with one of these classes: {names}."]


class InstructionFitness:
    """The dev metric of an instruction, through the black box: one API call the first time an
    instruction is seen, none after (cached by its text)."""

    def __init__(self, model, task, examples):
        self.model, self.task, self.examples = model, task, examples
        self.cache: dict[str, float] = {}
        self.calls = 0

    def __call__(self, instruction: str) -> float:
        if instruction not in self.cache:
            t = with_instruction(self.task, instruction, self.model.family)
            # no prompt vectors: "before" runs the instruction (shared by every example) once per call and
            # pads groups of similar length, where "after" would run the whole input for each instruction
            out = BlackBoxLM(self.model, t, self.examples, budget=1, position="before")(None)
            self.calls += 1
            self.cache[instruction] = t.score(out.logits[0].argmax(-1).numpy(), out.labels.numpy())
        return self.cache[instruction]


class TextEvolution:
    """EvoPrompt's GA or DE behind the ask/tell seam, over an archive of instructions (a candidate is its
    archive index). llm(prompts, **gen_kw) -> texts is the variation operator (a ``GenerativeLM``);
    check(instruction) -> why it is invalid, or None (default: ``instruction_problem``)."""

    def __init__(self, llm, initial: list[str], operator: str = "ga", population: int = 10,
                 generations: int | None = 10, seed: int = 0, *, check=instruction_problem, **gen_kw):
        if operator not in ("ga", "de"):
            raise ValueError(f"operator must be 'ga' or 'de', not {operator!r}.")
        if population < 3 or isinstance(initial, str) or not initial or not all(isinstance(p, str) and p.strip()
                                                                                for p in initial):
            raise ValueError("TextEvolution needs a population of at least 3 and a list of one or more starting "
                             f"instructions (non-empty strings); got population={population!r}, initial={initial!r}.")
        why = next(((i, w) for i, w in enumerate(map(check, initial)) if w), None)
        if why:
            raise ValueError(f"initial[{why[0]}] {initial[why[0]]!r} cannot start the search: {why[1]}.")
        self.llm, self.check, self.invalid = llm, check, 0  # invalid: operator children discarded
        self.operator, self.n, self.generations = operator, population, generations
        self.initial, self.gen_kw, self.rng = list(dict.fromkeys(initial)), gen_kw, np.random.default_rng(seed)
        self.archive: list[str] = []
        self.fitness: dict[int, float] = {}
        self.pop: list[int] = []
        self.generation = -1  # -1: the initial population is next
        self.children: list[int] = []
        self.log: list[dict] = []  # every operator call: its parents and the child it produced

    def _index(self, instruction: str) -> int:
        if instruction not in self.archive:
            self.archive.append(instruction)
        return self.archive.index(instruction)

    @property
    def popsize(self) -> int:
        """At most the calls of the next step: generation calls plus one fitness call per child."""
        return 2 * self.n

    def _operate(self, prompts: list[str], parents: list[tuple]) -> list[int]:
        replies = self.llm(prompts, seed=int(self.rng.integers(2 ** 31)), stop=["</prompt>"], **self.gen_kw)
        out = []
        for reply, par in zip(replies, parents):
            child = extract_prompt(reply)
            why = self.check(child) if child else None  # an empty or invalid child: the last parent again
            self.invalid += why is not None
            out.append(self._index(child if child and why is None else self.archive[par[-1]]))
            self.log.append({"generation": self.generation + 1, "parents": [self.archive[p] for p in par],
                             "reply": reply, "child": self.archive[out[-1]]}
                            | ({"invalid": why, "discarded": child} if why else {}))
        return out

    def ask(self) -> np.ndarray:
        if self.generation < 0:  # the starting instructions, then paraphrases of them up to N
            start = [self._index(p) for p in self.initial[:self.n]]
            need = self.n - len(start)
            para = self._operate([PARAPHRASE.format(p=self.archive[start[k % len(start)]]) for k in range(need)],
                                 [(start[k % len(start)],) for k in range(need)]) if need else []
            self.children = list(dict.fromkeys(start + para))
        elif self.operator == "ga":
            s = np.array([self.fitness[i] for i in self.pop])
            p = s / s.sum() if s.sum() > 0 else np.full(len(s), 1 / len(s))
            few = len(self.pop) < 2  # every child so far was a copy: a parent crosses with itself
            pairs = [tuple(self.rng.choice(self.pop, 2, replace=few, p=p if (p > 0).sum() >= 2 else None))
                     for _ in range(self.n)]
            self.children = self._operate([GA_TEMPLATE.format(a=self.archive[a], b=self.archive[b]) for a, b in pairs], pairs)
        else:
            best = max(self.pop, key=self.fitness.get)
            trios = []
            for i in self.pop:
                others = [j for j in self.pop if j != i]
                a, b = self.rng.choice(others, 2, replace=False) if len(others) >= 2 else self.rng.choice(self.pop, 2)
                trios.append((a, b, best, i))
            self.children = self._operate([DE_TEMPLATE.format(a=self.archive[a], b=self.archive[b], best=self.archive[c],
                                                              base=self.archive[i]) for a, b, c, i in trios], trios)
        return np.array(self.children, dtype=float)[:, None]

    def tell(self, X, losses) -> None:
        for i, loss in zip(np.asarray(X, dtype=int)[:, 0], losses):
            self.fitness[int(i)] = -float(loss)
        if self.generation < 0:
            self.pop = list(self.children)
        elif self.operator == "ga":  # the best N of parents and children, each instruction once
            pool = list(dict.fromkeys(self.pop + self.children))
            self.pop = sorted(pool, key=lambda i: -self.fitness[i])[:self.n]
        else:  # DE: a child replaces its basic prompt if it scores higher
            self.pop = [c if self.fitness[c] > self.fitness[i] and c not in self.pop else i
                        for i, c in zip(self.pop, self.children)]
        self.generation += 1

    @property
    def best(self) -> int:
        return max(self.pop, key=self.fitness.get) if self.pop else 0

    @property
    def selected(self) -> np.ndarray:
        return np.array([float(self.best)])

    def final(self) -> np.ndarray:
        return self.selected

    def stop(self) -> dict:
        done = self.generations is not None and self.generation >= self.generations
        return {"generations": self.generations} if done else {}  # None: until the loop's budget is spent

    def info(self) -> dict:
        s = [self.fitness[i] for i in self.pop]
        return {"generation": self.generation, "population_best": max(s), "population_mean": float(np.mean(s)),
                "instruction": self.archive[self.best]}


@dataclass(frozen=True)
class EvoPromptConfig:
    """EvoPrompt's settings. budget counts every API call: generations (the operators) and fitness calls."""

    operator: str = "ga"             # "ga" (roulette wheel, best N of parents and children) or "de"
    population: int = 10             # N (the paper: 10)
    generations: int | None = 10     # T (the paper: 10); None: as many as the budget allows
    budget: int = 300                # API calls; the run stops before a step that could exceed it
    temperature: float = 0.5         # sampling temperature of the operator calls
    max_new_tokens: int = 96         # tokens an operator may write
    initial: tuple[str, ...] = ()    # starting instructions; () = default_instructions(task)
    seed: int = 42

    def __post_init__(self) -> None:
        check_fields(self, positive=("max_new_tokens",), nonneg=("temperature", "seed"),
                     at_least={"population": 3, "generations": 1}, choices={"operator": ("ga", "de")})
        if self.budget < 2 * self.population:
            raise ValueError(f"EvoPromptConfig: budget must cover the first population, a budget of at least 2 * "
                             f"population = {2 * self.population} calls, not {self.budget}.")
        for i, text in enumerate(self.initial):
            why = "it is empty" if not text.strip() else instruction_problem(text)
            if why:
                raise ValueError(f"EvoPromptConfig: initial[{i}] {text!r} cannot start the search: {why}.")

    @classmethod
    def cpu_quick(cls, seed: int = 42, operator: str = "ga") -> "EvoPromptConfig":
        """The paper's population of 10, for as many generations as the budget allows (60 calls: the start and
        2 generations; the leaderboard's 300 calls buy 14), so that methods meet at equal calls."""
        return cls(operator=operator, population=10, generations=None, budget=60, seed=seed)

    @classmethod
    def paper(cls, seed: int = 42, operator: str = "ga") -> "EvoPromptConfig":
        """The paper's population 10 and 10 generations (about 210 calls)."""
        return cls(operator=operator, population=10, generations=10, budget=220, seed=seed)


class _Calls:
    """The calls of both APIs together, as the loop counts them."""

    def __init__(self, *apis):
        self.apis = apis

    @property
    def calls(self) -> int:
        return sum(a.calls for a in self.apis)


def run_evoprompt(model, task, split, cfg: EvoPromptConfig | None = None, *, display: bool = True,
                  evaluate_test: bool = True, operator_model=None, callback=None) -> Result:
    """The best instruction for a classification task, by EvoPrompt. The operators run on ``operator_model``
    (default: the same model, through ``GenerativeLM``); the fitness is the dev metric through ``BlackBoxLM``.
    ``res.task_definition`` is the task with the best instruction in its template; ``res.extra`` holds the
    instruction, every instruction seen with its dev metric, and every operator call."""
    cfg, task = cfg or EvoPromptConfig.cpu_quick(), get_task(task)
    set_seed(cfg.seed)
    t0 = time.perf_counter()
    llm = GenerativeLM(operator_model or model, batch_size=cfg.population)  # one batch per generation
    fitness = InstructionFitness(model, task, split.dev)
    opt = TextEvolution(llm, list(cfg.initial) or default_instructions(task), cfg.operator, cfg.population,
                        cfg.generations, cfg.seed, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    trace = tune(lambda X: np.array([-fitness(opt.archive[int(i)]) for i in np.asarray(X)[:, 0]]), opt,
                 budget=cfg.budget, api=_Calls(llm, fitness), callback=callback, display=display,
                 desc=f"EvoPrompt {task.name}")
    best = opt.archive[opt.best]
    tuned = with_instruction(task, best, model.family)
    res = build_result("evoprompt", model, tuned, cfg, z=np.zeros((0, 1)), position="auto", history=trace.history,
                       dev=opt.fitness[opt.best], calls=trace.calls, stop=trace.stop, extra={"space": "text", "instruction": best, "generation_calls": llm.calls,
                                         "fitness_calls": fitness.calls, "invalid_children": opt.invalid,
                                         "archive": [{"instruction": p, "dev": opt.fitness.get(i)} for i, p in enumerate(opt.archive)],
                                         "operations": opt.log})
    if evaluate_test and not trace.interrupted:
        res.test_metric = evaluate(model, tuned, split.test)
    res.seconds = time.perf_counter() - t0
    return res
