"""Nothing lost and no silent wrong answers: each test reproduces one bad input found by trying about a
hundred as a new user would (issue "Nothing lost and no silent wrong answers"), and pins the clear
error it now gets. Numbers in the comments are the issue's items."""
import json

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit import __main__ as cli
from bbtkit.data import splits as data
from bbtkit.tuning import results
from bbtkit.tuning.result_builder import ResultFileError
from bbtkit.methods.ajo import make_head
from bbtkit.data.splits import Example, Examples
from bbtkit.tuning.projection import Projection


def _result(z, classifier=None, metric=0.5):
    extra = {"head": {"kind": "linear", "hidden": 4, "classes": 2, "width": 8}} if classifier is not None else {}
    return bk.Result(method="bbt", task="sst2", model="m", config={"seed": 1}, z=np.asarray(z, dtype=float),
                     projections=[Projection(2, 6, seed=3)], n_tokens=2, hidden=3, layers=[0],
                     num_layers=1, position="after", test_metric=metric, extra=extra, classifier=classifier)


@pytest.fixture
def saved(tmp_path):
    """An old result A saved at tmp/run; B is the new one the user is saving over it."""
    a, b = _result([[1.0, 2.0]], metric=0.1), _result([[3.0, 4.0]], metric=0.9)
    return tmp_path / "run", a.save(tmp_path / "run"), a, b


# --- 1. saving is atomic, refuses to overwrite unless asked, and carries checksums ---------------------
def test_save_refuses_to_overwrite_unless_asked(saved):
    path, _, a, b = saved
    with pytest.raises(FileExistsError, match="overwrite=True"):
        b.save(path)
    assert bk.load_result(path).test_metric == a.test_metric
    b.save(path, overwrite=True)
    loaded = bk.load_result(path)
    assert loaded.test_metric == b.test_metric and np.array_equal(loaded.z, b.z)
    assert [p.name for p in path.parent.iterdir()] == ["run"]  # no temporary folders left behind


@pytest.mark.parametrize("fail_in", ["savez", "write_text", "rename"])
def test_a_save_killed_midway_leaves_the_old_result_or_nothing(saved, monkeypatch, fail_in):
    """A writer that raises part-way stands for a stop (Ctrl-C, a full disk, a killed kernel)."""
    path, _, a, b = saved
    if fail_in == "savez":
        monkeypatch.setattr(results.np, "savez", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    elif fail_in == "write_text":
        monkeypatch.setattr(results.Path, "write_text", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    else:  # between moving the old folder aside and moving the new one in
        real, calls = results.Path.rename, []

        def rename(self, target):
            calls.append(target)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(self, target)
        monkeypatch.setattr(results.Path, "rename", rename)
    with pytest.raises((KeyboardInterrupt, OSError)):
        b.save(path, overwrite=True)
    monkeypatch.undo()
    loaded = bk.load_result(path)  # the complete old result, never the new config with the old z
    assert loaded.test_metric == a.test_metric and np.array_equal(loaded.z, a.z)
    assert [p.name for p in path.parent.iterdir()] == ["run"]  # nothing half-written left beside it


def test_a_first_save_killed_midway_leaves_nothing_the_leaderboard_would_take_as_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(results.np, "savez", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _result([[1.0, 2.0]]).save(tmp_path / "cell")
    assert not (tmp_path / "cell").exists() and not any(tmp_path.iterdir())


def test_a_z_from_another_run_fails_the_checksum(tmp_path):
    _result([[1.0, 2.0]]).save(tmp_path / "a")
    _result([[5.0, 6.0]]).save(tmp_path / "b")
    (tmp_path / "a" / "z.npz").write_bytes((tmp_path / "b" / "z.npz").read_bytes())
    with pytest.raises(ResultFileError, match="z.npz does not match the checksum"):
        bk.load_result(tmp_path / "a")


# --- 3. a damaged folder says which file and what to do ----------------------------------------------
@pytest.mark.parametrize("damage, file", [
    (lambda p: (p / "result.json").write_text((p / "result.json").read_text()[:50]), "result.json"),
    (lambda p: (p / "result.json").write_text("[1, 2]"), "result.json"),
    (lambda p: (p / "result.json").write_text(json.dumps(
        {k: v for k, v in json.loads((p / "result.json").read_text()).items() if k != "z_shape" and k != "n_tokens"})),
     "result.json"),
    (lambda p: (p / "result.json").write_bytes(b"\xff\xfe{"), "result.json"),
    (lambda p: (p / "z.npz").write_bytes((p / "z.npz").read_bytes()[:40]), "z.npz"),
    (lambda p: (p / "z.npz").write_bytes(b"not a zip"), "z.npz"),
    (lambda p: (p / "z.npz").unlink(), "z.npz"),
    (lambda p: (p / "classifier.safetensors").write_bytes(b"\x00" * 12), "classifier.safetensors"),
    (lambda p: (p / "classifier.safetensors").unlink(), "classifier.safetensors"),
])
def test_a_damaged_result_names_the_file(tmp_path, damage, file):
    path = _result([[1.0, 2.0]], classifier=make_head("linear", 4, 2)).save(tmp_path / "run")
    assert bk.load_result(path).classifier is not None
    damage(path)
    with pytest.raises(ResultFileError, match=rf"{file}.*(Re-run|restore)"):
        bk.load_result(path)


# --- 4, 14. prompts: NaN, inf and empty populations are refused before any call is charged -------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_prompts_are_refused_before_charging(toy, bad):
    lm = bk.tiny_model("llama")
    api = bk.BlackBoxLM(lm, "sst2", toy, budget=10)
    prompts = torch.zeros(3, 2, lm.hidden_size)
    prompts[1, 0, 5] = bad
    with pytest.raises(ValueError, match="Candidate prompt 1 of 3 holds NaN or inf"):
        api(prompts)
    assert api.calls == 0
    with pytest.raises(ValueError, match="NaN or inf"):
        bk.evaluate(lm, "sst2", toy, prompts[1])
    with pytest.raises(ValueError, match="NaN or inf"):
        bk.Calibration.fit(lm, "sst2", toy, prompt=prompts[1])
    with pytest.raises(ValueError, match="NaN or inf"):
        bk.Calibration.from_logits(torch.tensor([[1.0, bad], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="finite"):
        bk.Calibration("champion", (1.0, bad))


def test_an_empty_population_is_a_clear_error(toy):
    lm = bk.tiny_model("llama")
    api = bk.BlackBoxLM(lm, "sst2", toy)
    with pytest.raises(ValueError, match="population is empty"):
        api(torch.zeros(0, 2, lm.hidden_size))
    assert api.calls == 0


# --- 5, 6. labels and label words -----------------------------------------------------------------
@pytest.mark.parametrize("label", [7, -1])
def test_evaluate_checks_labels_as_the_api_does(toy, toy_pairs, label):
    lm = bk.tiny_model("llama")
    with pytest.raises(ValueError, match=r"labels \[2\] outside 0\.\.1.*sst2"):
        bk.evaluate(lm, "sst2", toy_pairs)  # a 2-word task on 3-class pairs once returned 0.333
    bad = Examples(list(toy)[:2] + [Example("a good film", None, label)])
    with pytest.raises(ValueError, match=rf"labels \[{label}\] outside"):
        bk.evaluate(lm, "sst2", bad)
    with pytest.raises(ValueError, match=rf"labels \[{label}\] outside"):
        bk.BlackBoxLM(lm, "sst2", bad)


def test_label_words_that_become_one_token_are_refused(toy):
    lm = bk.tiny_model("llama")  # its tokenizer lowercases: "good" and "GOOD" are one token
    task = bk.Task("mine", ("good", "GOOD"), {"causal": "{text_a} it was {mask}"})
    with pytest.raises(bk.LabelWordError, match=r"'good' and 'GOOD'.*same token.*'good'"):
        task.label_ids(lm)
    with pytest.raises(bk.LabelWordError, match="same token"):
        bk.evaluate(lm, task, toy)


# --- 7, 12, 13. the data loader ---------------------------------------------------------------------
@pytest.mark.parametrize("row, field", [
    ({"text_a": "x", "text_b": None, "label": 1.7}, "label"),
    ({"text_a": "x", "text_b": None, "label": True}, "label"),
    ({"text_a": "x", "text_b": None, "label": "1"}, "label"),
    ({"text_a": None, "text_b": None, "label": 1}, "text_a"),
    ({"text_a": ["a", "b"], "text_b": None, "label": 1}, "text_a"),
    ({"text_a": "x", "text_b": 5, "label": 1}, "text_b"),
    ({"text_a": "x\ud800y", "text_b": None, "label": 1}, "text_a"),
])
def test_bad_fields_name_the_file_line_and_field(tmp_path, row, field):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text_a": "fine", "text_b": null, "label": 0}\n' + json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=rf"bad.jsonl:2: field '{field}'"):
        data.load_examples(path)


def test_a_lone_surrogate_is_refused_before_the_tokenizer():
    with pytest.raises(ValueError, match="lone surrogate"):
        Example("fine \ud83d text", None, 0)


def test_a_file_that_is_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"text_a": "ok", "text_b": null, "label": 0}\n{"text_a": "caf\xe9", "label": 1}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.jsonl:2: not UTF-8.*0xe9"):
        data.load_examples(path)


@pytest.mark.parametrize("text", ["{not json", '{"tasks": {"sst2": {"labels": "neg"}}}', "\udcff"])
def test_a_malformed_index_json_names_the_file(tmp_path, monkeypatch, text):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "index.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(ValueError, match="index.json"):
        data.task_labels("sst2")


# --- 8. templates -----------------------------------------------------------------------------------
def test_an_unknown_template_field_is_refused():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \{text_c\}.*only \{text_a\}, \{text_b\} and \{mask\}"):
        bk.Task("mine", ("no", "yes"), {"causal": "{text_a} and {text_c}? {mask}"})


# --- 9, 10. loading models --------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_asking_for_a_gpu_that_is_not_there_says_what_is(monkeypatch):
    with pytest.raises(ValueError, match="sees no CUDA device.*'cpu'"):
        bk.load_model(device="cuda")


def test_a_non_float_dtype_is_refused():
    with pytest.raises(ValueError, match="torch.int8 cannot run a model"):
        bk.load_model(dtype=torch.int8)


@pytest.mark.parametrize("make, says", [
    (lambda d: None, "has no config.json"),
    (lambda d: (d / "config.json").write_text("{oops"), "config.json is not a valid JSON"),
    (lambda d: (d / "config.json").write_text('{"model_type": "no-such-arch"}'), "model_type 'no-such-arch'"),
    (lambda d: (d / "config.json").write_text('{"model_type": "gpt2"}'), r"no \*.safetensors weights"),
])
def test_a_broken_model_folder_says_what_is_wrong(tmp_path, monkeypatch, make, says):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make(tmp_path)
    with pytest.raises(bk.ModelNotAvailableError, match=says) as err:
        bk.load_model(str(tmp_path))
    assert "not a local folder" not in str(err.value)


# --- 11. positions ----------------------------------------------------------------------------------
def test_more_prompt_tokens_than_positions_is_a_clear_error(toy):
    lm = bk.tiny_model("roberta")  # 258 positions, counted from padding_idx + 1 (0 + 1): 257 usable
    api = bk.BlackBoxLM(lm, "sst2", toy)
    with pytest.raises(ValueError, match=r"do not fit the 257 positions of tiny-roberta.*fewer prompt tokens"):
        api(torch.zeros(1, 300, lm.hidden_size))
    assert api.calls == 0


# --- 15. make course as root ------------------------------------------------------------------------
def test_jupyterlab_as_root_is_started_with_allow_root(monkeypatch, capsys):
    assert "--allow-root" in cli.lab_command("notebooks", root=True)
    assert "--allow-root" not in cli.lab_command("notebooks", root=False)
    ran = []
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0, raising=False)
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: ran.append(cmd) or 0)
    assert cli.main(["lab", "notebooks"]) == 0
    assert ran[0][-2:] == ["notebooks", "--allow-root"] and ran[0][1:3] == ["-m", "jupyterlab"]
    assert capsys.readouterr().out.count("\n") == 1  # one line says so


def test_a_summary_names_the_calibration_and_counts_calls_in_good_english():
    def res(calls, **config):
        return bk.Result(method="bbt", task="rte", model="m", config=config, z=np.zeros((1, 2)), projections=[],
                         n_tokens=1, hidden=2, layers=[0], num_layers=1, position="after", api_calls=calls)
    assert "bbt on rte" in res(1).summary() and "1 API call," in res(1).summary()
    assert "bbt + champion calibration on rte" in res(300, calibration="champion").summary()
    assert "300 API calls" in res(300).summary()
