"""The class server, started for real: uvicorn in a child process on a free 127.0.0.1 port, a tiny model,
an SQLite ledger in a temporary folder. Remote calls equal local ones; budgets hold under a race; a
kill -9 loses nothing and charges nothing twice; bad keys and bad input get clear 4xx answers."""
import dataclasses
import json
import threading
import urllib.request

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.api import remote as rm, wire
from bbtkit.serve.ledger import Ledger
from bbtkit.serve.process import ServerProcess

pytestmark = pytest.mark.slow
MODEL = "tiny-gpt2"
TEST_SIZE = 64  # the held-back test examples per competition task


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("ledger") / "class.db"
    with ServerProcess(db, MODEL, "--allow-hidden", "--max-body-mb", "1", "--competition", "sst2", "yelp",
                       "--test-size", str(TEST_SIZE), log=db.with_suffix(".log")) as s:
        s.ledger = Ledger(db)
        yield s


@pytest.fixture(scope="module")
def lm():
    return bk.load_model(MODEL)


@pytest.fixture(scope="module")
def split():
    return bk.load_split("sst2", seed=13)


def key(server, budget=100000, name=None):
    name = name or f"student-{len(server.ledger.keys())}"
    return server.ledger.create_key(name, budget)


@pytest.mark.parametrize("position", ["after", "before"])
def test_remote_logits_equal_local_for_every_kind_of_call(server, lm, split, position):
    r = bk.connect(server.url, key(server))
    ex = split.train
    local, remote = bk.BlackBoxLM(lm, "sst2", ex, position=position), bk.BlackBoxLM(r, "sst2", ex, position=position)
    g = torch.Generator().manual_seed(0)
    H, L = lm.hidden_size, lm.num_layers
    shallow, deep = torch.randn(3, 4, H, generator=g), torch.randn(3, L, 4, H, generator=g)
    per_example = torch.randn(2, len(ex), 4, H, generator=g)
    A = lambda *s: 0.1 * torch.randn(*s, generator=g)  # noqa: E731
    adapters = bk.AdapterSet({l: {t: (A(2, 2, H), A(2, out, 2)) for t, (_, out) in local.adapter_shapes().items()}
                              for l in range(L)}, 0.5)
    for kw in (dict(prompts=shallow, return_hidden=True), dict(prompts=deep), dict(prompts=per_example, per_example=True),
               dict(adapters=adapters), dict(prompts=shallow[:2], adapters=adapters), dict()):
        a, b = local(**kw), remote(**kw)
        torch.testing.assert_close(b.logits, a.logits, atol=1e-5, rtol=0)
        if a.hidden is not None:
            torch.testing.assert_close(b.hidden, a.hidden, atol=1e-5, rtol=0)
    assert remote.calls == local.calls
    np.testing.assert_allclose(remote.value_scales(4, deep=True), local.value_scales(4, deep=True), atol=1e-6)
    assert bk.evaluate(r, "sst2", split.dev, shallow[0], position=position) == \
        bk.evaluate(lm, "sst2", split.dev, shallow[0], position=position)


def test_a_seeded_bbt_run_through_the_server_ends_where_the_local_run_ends(server, lm, split):
    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(seed=3), budget=40)
    r = bk.connect(server.url, key(server))
    here, there = bk.run_bbt(lm, "sst2", split, cfg), bk.run_bbt(r, "sst2", split, cfg)
    np.testing.assert_array_equal(there.z, here.z)
    assert (there.dev_metric, there.test_metric, there.api_calls) == (here.dev_metric, here.test_metric, here.api_calls)
    assert r.usage()["calls"] >= 40


def test_a_wrong_or_revoked_key_is_refused_with_401(server):
    with pytest.raises(rm.AuthenticationError, match="refused the key"):
        bk.connect(server.url, "bbt_000000000000_not-a-real-secret")
    k = key(server, name="to-revoke")
    r = bk.connect(server.url, k)
    server.ledger.revoke("to-revoke")
    with pytest.raises(rm.AuthenticationError, match="revoked"):
        r.usage()
    with open(server.ledger.path, "rb") as f:
        assert k.split("_", 2)[2].encode() not in f.read()  # only the digest is stored


def test_an_exhausted_budget_is_the_remote_budget_error_and_charges_nothing(server, split):
    r = bk.connect(server.url, key(server, budget=5))
    api = bk.BlackBoxLM(r, "sst2", split.train)
    api(torch.zeros(3, 2, r.hidden_size))
    with pytest.raises(bk.BudgetExceededError, match="budget of 5 .3 used, 2 left"):
        api(torch.zeros(3, 2, r.hidden_size))
    assert r.usage()["calls"] == 3


def test_sixteen_clients_racing_to_overspend_one_key_are_charged_exactly_the_budget(server, split):
    k, budget = key(server, budget=50, name="race"), 50
    done = []

    def client():
        api = bk.BlackBoxLM(bk.connect(server.url, k), "sst2", split.train[:4])
        for _ in range(budget):  # bounded: at most the budget's worth of requests each
            try:
                api(torch.zeros(1, 2, api.model.hidden_size))
            except bk.BudgetExceededError:
                break
        done.append(api.calls)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(done) == 16 and sum(done) == budget
    kid = k.split("_")[1]
    rows = server.ledger._read("SELECT SUM(calls) FROM calls WHERE key_id = ?", (kid,))
    assert rows[0][0] == budget and server.ledger.keys()[[x["name"] for x in server.ledger.keys()].index("race")]["used"] == budget


def _post(url, path, body, k, content="application/octet-stream"):
    req = urllib.request.Request(url + path, data=body, method="POST",
                                 headers={"Authorization": f"Bearer {k}", "Content-Type": content})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_malformed_requests_get_a_4xx_with_a_message_and_the_server_stays_up(server, split):
    from safetensors.numpy import save

    k = key(server)
    r = bk.connect(server.url, k)
    sid, _ = r.session(bk.get_task("sst2"), split.train[:4], {"position": "after"})
    H = r.hidden_size
    cases = {
        "wrong hidden size": (wire.pack({"prompts": np.zeros((2, 3, H + 1))}), 400, b"shape"),
        "NaN": (wire.pack({"prompts": np.full((2, 3, H), np.nan)}), 400, b"NaN or inf"),
        "float64": (save({"prompts": np.zeros((2, 3, H))}), 400, b"float32"),
        "not safetensors": (b"\x00" * 64, 400, b"safetensors"),
        "oversized": (b"\x00" * (2 * 2 ** 20), 413, b"limit"),
    }
    used = r.usage()["calls"]
    for name, (body, status, words) in cases.items():
        code, text = _post(server.url, f"/v1/sessions/{sid}/logits", body, k)
        assert (code, words in text) == (status, True), (name, code, text)
    assert _post(server.url, "/v1/sessions", b"{not json", k, "application/json")[0] == 400
    assert _post(server.url, f"/v1/sessions/{'0' * 32}/logits", wire.pack({}), k)[0] == 404
    assert r.usage()["calls"] == used  # nothing refused was charged
    assert bk.BlackBoxLM(r, "sst2", split.train[:4])(torch.zeros(1, 2, H)).logits.shape == (1, 4, 2)  # still up


def test_kill_9_mid_run_loses_no_usage_charges_nothing_twice_and_the_run_ends_where_it_would(tmp_path, lm, split):
    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(seed=5), budget=60)
    db = tmp_path / "class.db"
    ledger = Ledger(db)
    k_once, k_killed = ledger.create_key("once", 10000), ledger.create_key("killed", 10000)
    with ServerProcess(db, MODEL, log=tmp_path / "server.log") as s:
        once = bk.run_bbt(bk.connect(s.url, k_once), "sst2", split, cfg)
        r = bk.connect(s.url, k_killed, retries=8)  # up to about 30 s of retries: long enough for a restart
        killed = []

        def kill_and_restart(trace):
            if not killed and trace.calls >= 30:
                s.kill()
                killed.append(ledger.usage(ledger.authenticate(k_killed))["calls"])
                threading.Thread(target=s.start, daemon=True).start()

        res = bk.run_bbt(r, "sst2", split, cfg, callback=kill_and_restart)
    assert killed and killed[0] >= 30
    np.testing.assert_array_equal(res.z, once.z)
    assert (res.dev_metric, res.test_metric) == (once.dev_metric, once.test_metric)
    charged = {n: ledger.usage(ledger.authenticate(k))["calls"] for n, k in (("once", k_once), ("killed", k_killed))}
    assert charged["killed"] == charged["once"]  # every call charged exactly once across the kill


def test_generation_through_the_server_equals_local_generation_and_is_charged_per_prompt(server, lm):
    r = bk.connect(server.url, key(server))
    prompts = ["the movie was", "a b c", "once upon a time there"]
    here, there = bk.GenerativeLM(lm, batch_size=2), bk.GenerativeLM(r, batch_size=2)
    for kw in (dict(max_new_tokens=6), dict(max_new_tokens=5, temperature=0.8, seed=3, stop=["e"])):
        assert there.complete(prompts, **kw) == here.complete(prompts, **kw)
    assert (there.calls, there.prompt_tokens, there.completion_tokens) == \
        (here.calls, here.prompt_tokens, here.completion_tokens)
    assert there.refusal("word " * 300, 8) == here.refusal("word " * 300, 8) is not None
    assert r.usage()["calls"] == 6


# What the tiny model needs of the presets: 2 layers, 256 positions, logits near zero (no champion calibration).
TINY_FIT = {"bbtv2_cal": {"calibration": "contextual"}, "ajo": {"calibration": "contextual"},
            "dfo_lora": {"layers": (0, 1)}, "dfo_lora_fw": {"layers": (0, 1)}, "evoprompt": {"max_new_tokens": 4}}


@pytest.mark.parametrize("name", list(bk.METHODS))
def test_every_registered_method_runs_through_the_server_to_the_local_result(server, lm, split, name):
    m = bk.METHODS[name]
    small = dataclasses.replace(split, test=split.test[:64])
    cfg = dataclasses.replace(m.preset("sst2", 1), **TINY_FIT.get(name, {}))
    cfg = dataclasses.replace(cfg, budget=min(cfg.budget, 60)) if m.tunes and cfg.budget > 60 and \
        getattr(cfg, "popsize", 0) <= 60 else cfg
    r = bk.connect(server.url, key(server))
    here, there = m.run(lm, "sst2", small, cfg, display=False), m.run(r, "sst2", small, cfg, display=False)
    if here.z is not None:
        np.testing.assert_allclose(there.z, here.z, atol=1e-6)
    assert (there.dev_metric, there.test_metric, there.api_calls) == (here.dev_metric, here.test_metric, here.api_calls)
    assert r.usage()["calls"] > 0


def _get(url, path, k=None):
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {k}"} if k else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


def test_a_submission_is_scored_on_the_held_back_split_as_locally_and_shows_on_the_leaderboard(server, lm, split):
    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(seed=2), budget=20)
    res = bk.run_bbt(lm, "sst2", split, cfg, display=False, evaluate_test=False)
    r = bk.connect(server.url, key(server, name="leader"))
    out = r.submit(res)
    expected = bk.evaluate(lm, "sst2", bk.load_split("sst2", test_size=TEST_SIZE).test, res.prompt, position=res.position)
    assert out["score"] == expected and out["task"] == "sst2" and out["submissions_left"] == 4
    rows = r.leaderboard()["sst2"]
    assert [x["name"] for x in rows].count("leader") == 1 and rows[0]["score"] >= expected
    page = _get(server.url, "/leaderboard").decode()
    assert "leader" in page and "<svg" in page and "<script" not in page
    with pytest.raises(rm.RemoteRequestError, match="tuned for 'sst2', not 'yelp'"):
        r.submit(res, task="yelp")
    with pytest.raises(rm.RemoteRequestError, match="no task 'agnews'"):
        r.submit(res, task="agnews")
    assert r.submit(res)["submissions_left"] == 3  # refused submissions did not count


def test_the_submission_limit_holds(server, lm, split):
    res = bk.METHODS["manual"].run(lm, "sst2", split, bk.METHODS["manual"].config(), evaluate_test=False)
    k = server.ledger.create_key("one-shot", 100, submissions=1)
    r = bk.connect(server.url, k)
    r.submit(res)
    with pytest.raises(rm.RemoteRequestError, match="no submissions left"):
        r.submit(res)


def test_the_held_back_labels_appear_in_no_response(server, lm, split):
    labels = bk.load_split("sst2", test_size=TEST_SIZE).test.labels
    forms = [json.dumps(labels.tolist()).encode(), ",".join(map(str, labels)).encode(), "".join(map(str, labels)).encode(),
             labels.astype(np.int64).tobytes(), labels.astype(np.float32).tobytes()]
    k = key(server, name="snoop")
    r = bk.connect(server.url, k)
    sid, _ = r.session(bk.get_task("sst2"), split.train, {"position": "after"})
    bodies = [_get(server.url, p, k) for p in ("/v1/info", "/v1/usage", "/v1/leaderboard", "/leaderboard")]
    bodies.append(_post(server.url, f"/v1/sessions/{sid}/logits", wire.pack({"prompts": np.zeros((2, 3, r.hidden_size))},
                                                                            {"return_hidden": True}), k)[1])
    res = bk.METHODS["manual"].run(lm, "sst2", split, bk.METHODS["manual"].config(), evaluate_test=False)
    from bbtkit.api.remote import result_upload
    bodies.append(_post(server.url, "/v1/submissions/sst2", json.dumps(result_upload(res)).encode(), k,
                        "application/json")[1])
    assert b'"score"' in bodies[-1]
    for body in bodies:
        assert not any(f in body for f in forms)


def test_notebook_12s_plain_loop_through_the_server_is_run_bbt(server, lm, split):
    """Notebook 12's loop, its cell run as committed against the tiny served model, is the loop run_bbt runs
    locally (the same best loss at every generation, the same calls)."""
    from notebook_cells import Spy, run_cell
    from bbtkit.methods.bbt import candidate_losses

    spy = Spy(candidate_losses)
    remote = bk.connect(server.url, key(server))
    ns = run_cell("12_lm_as_a_service.ipynb", "es.tell(", lm=lm, remote=remote, task=bk.get_task("sst2"), split=split,
                  BUDGET=40, candidate_losses=spy)
    res = bk.run_bbt(lm, "sst2", split, ns["cfg"], display=False, evaluate_test=False)
    assert len(spy.returns) == len(res.history) - 1 == 40 // ns["cfg"].popsize
    np.testing.assert_allclose([losses.min() for losses, _ in spy.returns], [h["best_loss"] for h in res.history[1:]],
                               rtol=1e-6)
    assert ns["api"].calls == res.api_calls and ns["api"].model is remote


def test_a_run_that_loses_the_server_keeps_its_best_and_resumes_to_the_same_end(tmp_path, lm, split):
    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(seed=4), budget=60)
    ledger = Ledger(tmp_path / "class.db")
    k = ledger.create_key("dora", 10000)
    ckpt = tmp_path / "run.ckpt"
    with ServerProcess(tmp_path / "class.db", MODEL, log=tmp_path / "server.log") as s:
        r = bk.connect(s.url, k, retries=0)

        def pull_the_plug(trace):
            if trace.calls >= 30:
                s.kill()

        cut = bk.run_bbt(r, "sst2", split, cfg, display=False, checkpoint=ckpt, callback=pull_the_plug)
        assert "server unavailable" in cut.stop and cut.test_metric is None and 30 <= cut.api_calls < 60
        s.start()
        resumed = bk.run_bbt(bk.connect(s.url, k), "sst2", split, cfg, display=False, resume=ckpt)
    whole = bk.run_bbt(lm, "sst2", split, cfg, display=False)
    np.testing.assert_array_equal(resumed.z, whole.z)
    assert (resumed.dev_metric, resumed.test_metric) == (whole.dev_metric, whole.test_metric)
