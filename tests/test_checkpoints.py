"""Checkpoints and saved results you can trust: a checkpoint that cannot be written ends the run with what
it found and leaves no temporary file; resume refuses a checkpoint of another model, dtype, task, split or
config, an edited one and a file that is not one, saying which; load_result refuses an edited result.json."""
import dataclasses
import errno
import json

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.tuning.result_builder import ResultFileError
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.tuning.projection import Projection

from test_loop import StopAfter


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


@pytest.fixture(scope="module")
def lm():
    return bk.tiny_model("llama")


def small(**kw):
    """Four generations of four: five checkpoint saves (one per generation, one at the end)."""
    return dataclasses.replace(bk.BBTConfig.cpu_quick(seed=3), n_prompt_tokens=2, intrinsic_dim=8, popsize=4,
                               eval_every=8, budget=16, **kw)


def _disk_full(f, path):
    f.write('{"version": 2, "ev')
    raise OSError(errno.ENOSPC, "No space left on device")


def _ctrl_c(f, path):
    f.write('{"version": 2, "ev')
    raise KeyboardInterrupt


def _folder_in_the_way(f, path):  # someone puts a folder where the checkpoint goes: the rename fails
    if path.exists():
        path.unlink()
    path.mkdir()
    f.write("{}")


FAULTS = {"disk full": (_disk_full, "checkpoint error", "Free some disk space"),
          "ctrl-c": (_ctrl_c, "interrupted", "KeyboardInterrupt"),
          "folder": (_folder_in_the_way, "checkpoint error", "not a folder")}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_checkpoint_write_at_any_save_returns_the_best_with_the_reason_and_no_temporary_file(
        fault, lm, toy_split, tmp_path, monkeypatch):
    fail, key, words = FAULTS[fault]
    whole = bk.run_bbt(lm, "sst2", toy_split, small(), display=False)
    real_dump = json.dump  # the checkpoint writer's last step before the rename
    for k in range(5):
        folder, seen = tmp_path / f"save{k}", []

        def dump(doc, f, **kw):
            seen.append(doc)
            if len(seen) == k + 1:
                fail(f, folder / "c.json")  # the doc is what the run had when this save began
            return real_dump(doc, f, **kw)

        monkeypatch.setattr(json, "dump", dump)
        res = bk.run_bbt(lm, "sst2", toy_split, small(), display=False, checkpoint=folder / "c.json")
        monkeypatch.undo()
        assert len(seen) >= k + 1, "the run saved fewer times than expected"
        failed = seen[k]
        assert key in res.stop and words in res.stop[key], (k, res.stop)
        np.testing.assert_array_equal(res.z.reshape(-1), failed["best_z"])  # the best so far, kept
        assert res.api_calls == failed["state"]["calls"] and res.dev_metric == failed["best_dev"]
        assert (res.test_metric is None) == (fault == "ctrl-c")
        if k == 4:  # the last save, after the run had finished
            np.testing.assert_array_equal(res.z, whole.z)
        assert not list(folder.glob("*.tmp")), f"a temporary file was left behind at save {k}"


def test_a_checkpoint_path_that_is_a_folder_is_refused_before_the_run(lm, toy_split, tmp_path):
    with pytest.raises(ValueError, match="is a folder; pass a file path"):
        bk.run_bbt(lm, "sst2", toy_split, small(), display=False, checkpoint=tmp_path)


# --- resume refuses what is not this run's checkpoint --------------------------------------------------
@pytest.fixture(scope="module")
def stopped(lm, toy_split, tmp_path_factory):
    """A checkpoint of a run stopped after two generations, and the run's pieces."""
    path = tmp_path_factory.mktemp("stopped") / "c.json"
    bk.run_bbt(lm, "sst2", toy_split, small(), display=False, callback=StopAfter(2), checkpoint=path)
    return path


def _bf16():
    lm = bk.tiny_model("llama")
    lm.model.to(torch.bfloat16)
    return lm


OTHER_RUNS = {  # what changes -> what the refusal says
    "model": (lambda lm, s: (bk.tiny_model("gpt2"), "sst2", s, small()), r"its model differs \(.*tiny-llama"),
    "dtype": (lambda lm, s: (_bf16(), "sst2", s, small()), r"its dtype differs \('float32' in the checkpoint, "
                                                            r"'bfloat16' now\)"),
    "task": (lambda lm, s: (lm, "yelp", s, small()), r"its task differs \(name: 'sst2' in the checkpoint, 'yelp' now"),
    "train split": (lambda lm, s: (lm, "sst2", dataclasses.replace(s, train=s.train[:4]), small()),
                    r"its split differs \(other train examples\)"),
    "dev split": (lambda lm, s: (lm, "sst2", dataclasses.replace(s, dev=s.dev[:1]), small()),
                  r"its split differs \(other dev examples\)"),
    "config": (lambda lm, s: (lm, "sst2", s, small(sigma=0.5)),
               r"its config differs \(sigma: 1.0 in the checkpoint, 0.5 now\)"),
}


@pytest.mark.parametrize("other", list(OTHER_RUNS))
def test_resume_refuses_a_checkpoint_of_another_run_and_says_which_part_differs(other, stopped, lm, toy_split):
    make, says = OTHER_RUNS[other]
    model, task, split, cfg = make(lm, toy_split)
    with pytest.raises(ValueError, match=r"belongs to another run: " + says + r".*Resume with the same model"):
        bk.run_bbt(model, task, split, cfg, display=False, resume=stopped)


EDITS = {
    "history cleared": lambda doc: doc.update(history=[]),
    "events dropped": lambda doc: doc.update(events=doc["events"][:1]),
    "calls changed": lambda doc: doc["state"].update(calls=0),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_resume_refuses_a_checkpoint_edited_by_hand(edit, stopped, lm, toy_split, tmp_path):
    doc = json.loads(stopped.read_text())
    EDITS[edit](doc)
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="was edited or damaged after it was written"):
        bk.run_bbt(lm, "sst2", toy_split, small(), display=False, resume=tmp_path / "c.json")


@pytest.mark.parametrize("text, says", [
    ("[1, 2, 3]", r"is not a checkpoint of a run \(it holds a JSON list\)"),
    ('"hello"', r"is not a checkpoint of a run \(it holds a JSON str\)"),
    ('{"a": 1}', r"is not a checkpoint of a run \(it holds an object without a checksum\)"),
    ('{"version": 1, "fingerprint": null, "events": []}', "another version of bbtkit"),
    ("{not json", "cannot be read"),
])
def test_resume_refuses_a_file_that_is_not_a_checkpoint_of_a_run(text, says, lm, toy_split, tmp_path):
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(ValueError, match=says):
        bk.run_bbt(lm, "sst2", toy_split, small(), display=False, resume=tmp_path / "c.json")


def test_the_unedited_checkpoint_still_resumes_to_the_same_end(stopped, lm, toy_split):
    whole = bk.run_bbt(lm, "sst2", toy_split, small(), display=False)
    resumed = bk.run_bbt(lm, "sst2", toy_split, small(), display=False, resume=stopped)
    np.testing.assert_allclose(resumed.z, whole.z, atol=1e-6, rtol=0)
    assert resumed.api_calls == whole.api_calls and resumed.test_metric == whole.test_metric


# --- load_result refuses an edited result.json ---------------------------------------------------------
def _result() -> bk.Result:
    history = [{"calls": np.int64(4), "best_loss": np.float32(0.25), "dev_metric": float("nan")}]
    return bk.Result(method="bbt", task="sst2", model="m", config={"seed": 1, "sigma": np.float64(0.1)},
                     z=np.array([[1.0, 2.0]]), projections=[Projection(2, 6, seed=3)], n_tokens=2, hidden=3,
                     layers=[0], num_layers=1, position="after", history=history, test_metric=0.5,
                     extra={"per_class": {1: 0.5}})


@pytest.mark.parametrize("field, value", [("test_metric", 0.99), ("dev_metric", 1.0), ("api_calls", 1),
                                          ("history", [])])
def test_load_result_refuses_an_edited_metric(field, value, tmp_path):
    path = _result().save(tmp_path / "run")
    loaded = bk.load_result(path)  # numpy values, a NaN and int keys read back under the same checksum
    assert loaded.test_metric == 0.5 and loaded.extra == {"per_class": {"1": 0.5}}
    meta = json.loads((path / "result.json").read_text())
    meta[field] = value
    (path / "result.json").write_text(json.dumps(meta, indent=1))
    with pytest.raises(ResultFileError, match=r"result.json was edited after it was saved.*Re-run"):
        bk.load_result(path)


def test_a_result_saved_before_its_fields_were_checksummed_still_loads(tmp_path):
    path = _result().save(tmp_path / "run")
    meta = json.loads((path / "result.json").read_text())
    del meta["checksums"]["fields"]  # what results saved before this change hold
    meta["test_metric"] = 0.75
    (path / "result.json").write_text(json.dumps(meta, indent=1))
    assert bk.load_result(path).test_metric == 0.75

