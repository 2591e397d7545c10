"""Every method's config refuses a field of the wrong type or range with a ValueError that names the
field (bbtkit.fields.check_fields, called first in each config's __post_init__)."""
import dataclasses
import math
import types
import typing

import pytest
from hypothesis import given, settings, strategies as st

import bbtkit as bk
from bbtkit.methods.baselines import PromptConfig
from bbtkit.fields import check_fields
from bbtkit.methods.random_search import RandomSearchConfig

CONFIGS = [bk.BBTConfig, bk.BBTv2Config, bk.AJOConfig, RandomSearchConfig, bk.ZOConfig, bk.IPLConfig, PromptConfig,
           bk.MeZOConfig, bk.DFOLoRAConfig, bk.EvoPromptConfig, bk.EoTConfig, bk.GenerationConfig]


def _kinds(tp) -> set:
    """The plain kinds an annotation allows: int, float, str, bool, tuple, None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(tp)))
    if tp is type(None):
        return {None}
    origin = typing.get_origin(tp) or tp
    return {origin} if origin in (int, float, str, bool, tuple) else {object}


def _wrong_values(kinds: set):
    """Values that no field of these kinds accepts."""
    bad = [object(), {"a": 1}]
    if float not in kinds:
        bad += [2.5, -0.5]
    if float in kinds:
        bad += [math.nan, math.inf, -math.inf]
    if str not in kinds:
        bad += ["20", "x"]
    if bool not in kinds:
        bad += [True, False]
    if tuple in kinds and str not in kinds:
        bad += ["ab", "Classify it"]
    if None not in kinds:
        bad += [None]
    if tuple not in kinds and float not in kinds:
        bad += [(1, 2)]
    return bad


FIELDS = [(cls, f.name, _kinds(typing.get_type_hints(cls)[f.name]))
          for cls in CONFIGS for f in dataclasses.fields(cls) if f.init]
FIELDS = [(cls, name, kinds) for cls, name, kinds in FIELDS if object not in kinds]


def test_every_config_has_typed_fields():
    assert len(FIELDS) > 100 and {cls for cls, _, _ in FIELDS} == set(CONFIGS)


@pytest.mark.parametrize("cls,name,kinds", FIELDS, ids=[f"{c.__name__}.{n}" for c, n, _ in FIELDS])
def test_wrong_type_names_the_field(cls, name, kinds):
    for value in _wrong_values(kinds):
        with pytest.raises(ValueError, match=rf"{cls.__name__}.*\b{name}\b"):
            cls(**{name: value})


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_wrong_values_name_the_field(data):
    cls, name, kinds = data.draw(st.sampled_from(FIELDS))
    wrong = [st.sampled_from(_wrong_values(kinds))]
    if str not in kinds:
        wrong.append(st.text(max_size=5))
    if float not in kinds:
        wrong.append(st.floats(allow_nan=True).filter(lambda v: not float(v).is_integer()))
    value = data.draw(st.one_of(wrong))
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        cls(**{name: value})


OUT_OF_RANGE = [(bk.BBTConfig, "sigma", 0.0), (bk.BBTConfig, "popsize", 1), (bk.BBTConfig, "bound", -1.0),
                (bk.BBTConfig, "loss", "mse"), (bk.BBTConfig, "eval_every", 0), (bk.BBTv2Config, "cache", "disk"),
                (bk.AJOConfig, "mix", 1.5), (bk.AJOConfig, "lr", -1e-3), (bk.AJOConfig, "head", "tree"),
                (bk.IPLConfig, "warmup", 1.0), (bk.IPLConfig, "mode", "white"), (PromptConfig, "demonstrations_per_class", -1),
                (PromptConfig, "calibration", "platt"),
                (bk.MeZOConfig, "weight_decay", -1.0), (bk.MeZOConfig, "eps", 0.0),
                (bk.DFOLoRAConfig, "intrinsic_dim", 0), (bk.DFOLoRAConfig, "bound", -1.0),
                (bk.EvoPromptConfig, "population", 2), (bk.EoTConfig, "batch", 0)]


@pytest.mark.parametrize("cls,name,value", OUT_OF_RANGE, ids=[f"{c.__name__}.{n}={v}" for c, n, v in OUT_OF_RANGE])
def test_out_of_range_names_the_field(cls, name, value):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        cls(**{name: value})


@settings(max_examples=100, deadline=None)
@given(budget=st.integers(-10**6, 10**6), sigma=st.floats(allow_nan=True, allow_infinity=True))
def test_bbt_ranges(budget, sigma):
    ok = budget >= 20 and math.isfinite(sigma) and sigma > 0
    if ok:
        assert bk.BBTConfig(budget=budget, sigma=sigma).sigma == sigma
    else:
        with pytest.raises(ValueError, match=r"budget|sigma"):
            bk.BBTConfig(budget=budget, sigma=sigma)


def test_values_are_normalised():
    """numpy scalars become Python ones and lists tuples, so that a config saves as JSON and compares equal."""
    import numpy as np

    cfg = bk.BBTv2Config(budget=np.int64(400), sigma=np.float32(0.5), layers=[3, 1])
    assert type(cfg.budget) is int and type(cfg.sigma) is float and cfg.layers == (1, 3)
    assert cfg == bk.BBTv2Config(budget=400, sigma=0.5, layers=(1, 3))


def test_check_fields_on_a_config_of_ones_own():
    """A student's config gets the same checks by calling check_fields in its __post_init__."""
    @dataclasses.dataclass(frozen=True)
    class Mine:
        steps: int = 10
        lr: float = 0.1
        names: tuple[str, ...] = ("a",)

        def __post_init__(self):
            check_fields(self, positive=("lr",), at_least={"steps": 1})

    assert Mine(names=["x", "y"]).names == ("x", "y")
    for kw, field in [({"steps": 2.5}, "steps"), ({"lr": 0.0}, "lr"), ({"names": "xy"}, "names"), ({"steps": 0}, "steps")]:
        with pytest.raises(ValueError, match=rf"Mine: {field}"):
            Mine(**kw)
