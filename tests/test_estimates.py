"""Estimates of a run's minutes from a pilot: the parts add up to what a run records, and they invert."""
import dataclasses

import pytest

import bbtkit as bk
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.course.estimates import Estimate, fixed_minutes, shared_budget
from bbtkit.course.pilots import pilot

BUDGET = 60


@pytest.fixture(scope="module")
def setup(toy):
    lm = bk.tiny_model("llama", layers=2)
    many = Examples([toy[i % len(toy)] for i in range(16)], name="many")  # calls long enough to time
    split = Split(train=many, dev=toy, test=many, task="sst2", seed=42)
    return lm, split


def small(method: str, **kw):
    cfg = bk.get_method(method).preset("sst2", 42, budget=BUDGET)
    return dataclasses.replace(cfg, intrinsic_dim=5, eval_every=20, calibration=None, **kw)


def hand(**kw) -> Estimate:
    """An estimate with round numbers: 30 s set-up, 0.1 s a call, 2 s a dev check, 0.05 s a test example."""
    return Estimate(**{**dict(method="bbtv2", setup=30.0, per_call=0.1, per_dev=2.0, per_test=0.05, generation=10,
                              start_calls=1, eval_every=50, n_test=200), **kw})


@pytest.mark.parametrize("method", ["bbt", "bbtv2", "ajo"])
def test_pilot_counts_match_the_run_and_the_time_is_within_a_generous_factor(setup, method):
    lm, split = setup
    cfg = small(method)
    est = pilot(method, lm, "sst2", split, cfg)
    assert est.generation == cfg.popsize and est.start_calls == (0 if method == "bbt" else 1)
    assert est.eval_every == 20 and est.n_test == len(split.test)
    parts = est.parts(BUDGET)
    assert all(parts[k] >= 0 for k in ("setup", "call_seconds", "dev_seconds", "test_seconds"))
    assert est.per_call > 0 and est.per_test > 0 and est.per_dev > 0
    res = bk.get_method(method).run(lm, "sst2", split, cfg, display=False)
    assert res.api_calls == est.calls(BUDGET) == parts["calls"]  # what the loop spends, exactly
    assert sum(row.get("dev_metric") is not None for row in res.history) == est.dev_checks(BUDGET)
    # the run's recorded generations (after the first, without a dev check) against the per-call estimate
    gens = [(b["calls"] - a["calls"], b["seconds"]) for a, b in zip(res.history, res.history[1:])
            if b.get("dev_metric") is None]
    measured = sum(s for _, s in gens) / sum(n for n, _ in gens)
    assert est.per_call / 3 < measured < est.per_call * 3
    assert parts["total"] / 3 < res.seconds < parts["total"] * 3  # res.seconds: the whole run, test included


def test_the_manual_row_costs_its_setup_and_test_whatever_the_budget(setup):
    lm, split = setup
    est = pilot("manual", lm, "sst2", split)
    assert est.generation == 0 and est.calls(0) == 0 and est.dev_checks(1000) == 0
    assert est.minutes(0) == est.minutes(1000) > 0
    with pytest.raises(ValueError, match="tunes nothing"):
        est.budget_for(5)


def test_minutes_grow_with_the_budget_and_the_test_set():
    est = hand()
    minutes = [est.minutes(b) for b in (11, 51, 101, 401, 1001)]
    assert minutes == sorted(minutes) and len(set(minutes)) == len(minutes)
    assert est.minutes(401, n_test=1000) > est.minutes(401) > est.minutes(401, n_test=0)
    assert est.minutes(401, eval_every=10) > est.minutes(401)
    p = est.parts(401)  # 1 + 40 generations of 10; dev at the start and at 51, 101, ..., 401
    assert (p["calls"], p["dev_checks"]) == (401, 9)
    assert p["total"] == pytest.approx(30 + 401 * 0.1 + 9 * 2.0 + 200 * 0.05)
    assert est.calls(409) == 401  # whole generations only
    assert "set-up 30 s, 401 calls × 0.100 s, 9 dev checks × 2.0 s, test 10 s" in est.describe(401)


def test_budget_for_inverts_minutes():
    for est in (hand(), hand(start_calls=0, method="bbt"), hand(per_dev=0.0, eval_every=None)):
        for budget in [est.start_calls + k * est.generation for k in (1, 2, 7, 40, 333)]:
            assert est.budget_for(est.minutes(budget)) == budget
            assert est.minutes(est.budget_for(3.0)) <= 3.0 < est.minutes(est.budget_for(3.0) + est.generation)


def test_shared_budget_fits_the_minutes_of_all_methods_together():
    ests = {"bbt": hand(method="bbt", start_calls=0), "bbtv2": hand(), "manual": hand(method="manual", generation=0)}
    b = shared_budget(ests, 6.0)
    assert b % 10 == 0 and sum(e.minutes(b) for e in ests.values()) <= 6.0
    assert sum(e.minutes(b + 10) for e in ests.values()) > 6.0
    with pytest.raises(ValueError, match="do not cover.*or evaluate on fewer test examples"):
        shared_budget(ests, 0.5)


def test_tuning_only_budgets_the_calls_and_dev_checks_and_states_the_rest():
    ests = {"bbt": hand(method="bbt", start_calls=0), "bbtv2": hand(), "manual": hand(method="manual", generation=0)}
    fixed = fixed_minutes(ests)
    for e in ests.values():
        p = e.parts(e.start_calls + e.generation if e.generation else 0)
        assert e.fixed_minutes() == pytest.approx((p["setup"] + p["test_seconds"]) / 60)
    assert fixed == pytest.approx(sum(e.fixed_minutes() for e in ests.values()))
    b = shared_budget(ests, 3.0, tuning_only=True)
    assert sum(e.minutes(b) for e in ests.values()) - fixed <= 3.0 < sum(e.minutes(b + 10) for e in ests.values()) - fixed
    assert b == shared_budget(ests, 3.0 + fixed + 1e-9)  # the fixed minutes on top of the tuning's
    assert b > shared_budget(ests, 3.0)  # the same minutes buy more calls when set-up and test are not in them
    with pytest.raises(ValueError, match=r"tuning \(calls and dev checks\)") as err:
        shared_budget(ests, 0.01, tuning_only=True)
    assert "test examples" not in str(err.value)  # the test evaluation is not in these minutes


@pytest.mark.parametrize("call,match", [
    (lambda e: e.minutes(5), "below one generation .* at least 11"),
    (lambda e: e.calls(10), "below one generation"),
    (lambda e: e.budget_for(-1), "minutes must be a finite number >= 0"),
    (lambda e: e.budget_for(float("nan")), "minutes must be"),
    (lambda e: e.budget_for(0.5), "do not cover one generation .* Give at least"),
    (lambda e: e.minutes(101, n_test=-1), "n_test"),
    (lambda e: hand(per_call=-0.1), "per_call must be a finite number of seconds"),
])
def test_bad_input_says_what_to_do(call, match):
    with pytest.raises(ValueError, match=match):
        call(hand())
