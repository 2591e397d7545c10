"""The class server's pieces without a server: the ledger (keys hashed, compared in constant time, budgets
charged atomically and once per idempotency key), the wire format, the batcher and the teacher's CLI."""
import threading

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.api import wire
from bbtkit.serve import ledger as lg
from bbtkit.serve.batching import Batcher, Job


@pytest.fixture
def ledger(tmp_path):
    return lg.Ledger(f"sqlite:///{tmp_path}/class.db")


def test_keys_are_stored_as_digests_and_compared_in_constant_time(ledger, monkeypatch):
    k = ledger.create_key("ada", 10)
    secret = k.split("_", 2)[2]
    assert secret.encode() not in open(ledger.path, "rb").read()
    seen = []
    real = lg.hmac.compare_digest
    monkeypatch.setattr(lg.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    assert ledger.authenticate(k).name == "ada"
    with pytest.raises(lg.KeyError401):
        ledger.authenticate(k[:-1] + ("A" if k[-1] != "A" else "B"))
    assert len(seen) == 2
    for bad in (None, "", "bbt_", "nope", "bbt_xx_yy"):
        with pytest.raises(lg.KeyError401):
            ledger.authenticate(bad)
    ledger.revoke("ada")
    with pytest.raises(lg.KeyError401, match="revoked"):
        ledger.authenticate(k)


def test_charges_respect_the_budget_once_per_idempotency_key_and_refunds_undo_them(ledger):
    key = ledger.authenticate(ledger.create_key("bo", 10))
    cid, new = ledger.charge(key, 4, "logits", "a")
    assert new and ledger.charge(key, 4, "logits", "a") == (cid, False)  # a retry is not charged again
    ledger.charge(key, 6, "logits", "b")
    with pytest.raises(lg.BudgetExhausted, match="budget of 10 .10 used, 0 left"):
        ledger.charge(key, 1, "logits", "c")
    ledger.refund(cid)
    assert ledger.usage(key)["calls"] == 6 and ledger.usage(key)["left"] == 4
    ledger.finish(ledger.charge(key, 2, "generate")[0], tokens=30, seconds=0.5)
    u = ledger.usage(key)
    assert (u["calls"], u["requests"], u["tokens"]) == (8, 2, 30)
    ledger.set_budget("bo", 100)
    assert ledger.usage(key)["left"] == 92
    assert ledger.usage_csv().splitlines()[1].startswith("bo,100,8,2,30,0.5,False")


def test_threads_racing_on_one_key_never_overspend(ledger):
    key = ledger.authenticate(ledger.create_key("race", 37))
    won = []

    def spend():
        for _ in range(40):
            try:
                ledger.charge(key, 1, "logits")
                won.append(1)
            except lg.BudgetExhausted:
                return

    threads = [threading.Thread(target=spend) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(won) == 37 == ledger.total_charged() == ledger.usage(key)["calls"]


def test_bad_ledger_input_says_what_to_do(ledger, tmp_path):
    ledger.create_key("cy", 1)
    with pytest.raises(ValueError, match="already a key for 'cy'"):
        ledger.create_key("cy", 1)
    with pytest.raises(ValueError, match="whole number"):
        ledger.create_key("di", -1)
    with pytest.raises(ValueError, match="No key is named 'zz'"):
        ledger.revoke("zz")
    with pytest.raises(ValueError, match="sqlite:///PATH"):
        lg.Ledger("postgresql://host/db")
    assert lg.sqlite_path("sqlite:///x/y.db") == "x/y.db" and lg.sqlite_path("sqlite:////abs/y.db") == "/abs/y.db"


def test_the_teachers_cli_creates_keys_from_a_class_list_and_exports_usage(tmp_path, capsys):
    from bbtkit.__main__ import main

    (tmp_path / "class.txt").write_text("ada\nbo\n\n")
    db = f"sqlite:///{tmp_path}/c.db"
    assert main(["keys", "create", "--class-list", str(tmp_path / "class.txt"), "--budget", "50", "--db", db,
                 "--out", str(tmp_path / "keys.csv")]) == 0
    rows = (tmp_path / "keys.csv").read_text().splitlines()
    assert rows[0] == "name,key" and [r.split(",")[0] for r in rows[1:]] == ["ada", "bo"]
    assert main(["keys", "budget", "bo", "--budget", "70", "--db", db]) == 0
    assert main(["keys", "revoke", "ada", "--db", db]) == 0
    capsys.readouterr()
    assert main(["keys", "usage", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("ada,50,0") and out[1].endswith("True") and out[2].startswith("bo,70,0")
    assert main(["keys", "create", "--db", db]) == 1  # no names, no budget: a sentence, not a traceback


def test_the_wire_round_trips_tensors_adapters_and_tasks_and_refuses_what_is_not_safetensors():
    a = torch.randn(2, 3, 4)
    arrays, meta = wire.unpack(wire.pack({"prompts": a, "none": None}, {"pop": 2}))
    assert set(arrays) == {"prompts"} and meta == {"pop": 2} and torch.equal(torch.from_numpy(arrays["prompts"]), a)
    ad = bk.AdapterSet({0: {"q": (torch.randn(2, 1, 4), torch.randn(2, 4, 1))}}, 0.5)
    back = wire.adapters_from_tensors(*wire.unpack(wire.pack(*wire.adapters_to_tensors(ad))))
    assert back.scale == 0.5 and all(torch.equal(x, y) for x, y in zip(back.weights[0]["q"], ad.weights[0]["q"]))
    task = bk.get_task("agnews")
    assert wire.task_from_json(wire.task_to_json(task)) == task
    ex = bk.Examples([bk.Example("a", None, 1), bk.Example("b", "c", 0)])
    assert "1" not in str(wire.examples_to_json(ex)["rows"])  # labels never leave the student
    for body in (b"", b"\xff" * 8 + b"{}", b"\x02\x00\x00\x00\x00\x00\x00\x00[]"):
        with pytest.raises(wire.WireError):
            wire.unpack(body)
    with pytest.raises(wire.WireError, match="over the limit"):
        wire.unpack(wire.pack({"x": np.zeros(100)}), limit=100)


def test_the_batcher_packs_concurrent_requests_into_one_pass_with_the_same_answers(toy):
    lm = bk.tiny_model("gpt2")
    api = bk.BlackBoxLM(lm, "sst2", toy)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randn(2, 3, lm.hidden_size, generator=g) for _ in range(4)]
    alone = [api(p).logits for p in prompts]
    b = Batcher(max_wait=0.5)
    try:
        answers = [f.result(timeout=60) for f in [b.submit(Job(api, p, 2)) for p in prompts]]
        assert b.passes == 1 and answers[0].packed == 4
        futs = [b.submit(Job(api, p, 2)) for p in prompts[:2]]
        bad = b.submit(Job(api, torch.full((2, 3, lm.hidden_size), float("nan")), 2))
        again = [f.result(timeout=60) for f in futs]  # the failed pack is run again one request at a time
        with pytest.raises(ValueError, match="NaN"):
            bad.result(timeout=60)
    finally:
        b.close()
    for x, y in zip(answers + again, alone + alone[:2]):
        torch.testing.assert_close(x.logits, y, atol=1e-5, rtol=0)


def test_the_client_says_what_went_wrong_when_no_server_answers():
    import socket

    from bbtkit.api import remote as rm
    from bbtkit.serve.process import free_port

    with pytest.raises(ValueError, match="http://HOST:PORT"):
        bk.connect("localhost:8000", "bbt_x_y")
    with pytest.raises(rm.AuthenticationError, match="starts with 'bbt_'"):
        bk.connect("http://127.0.0.1:1", "sk-123")
    with pytest.raises(rm.ServerUnavailableError, match="could not be reached.*Is it running"):
        bk.connect(f"http://127.0.0.1:{free_port()}", "bbt_x_y", retries=1)
    with socket.socket() as listener:  # accepts, never answers: a timeout
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        with pytest.raises(rm.ServerUnavailableError, match="did not answer within 0.3 s"):
            bk.connect(f"http://127.0.0.1:{listener.getsockname()[1]}", "bbt_x_y", timeout=0.3, retries=0)


def test_answers_and_rate_limits_defend_as_documented():
    from bbtkit.api.answers import Answers
    from bbtkit.serve.defenses import RateLimit

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    assert torch.equal(Answers("full")(logits), logits)
    top = Answers("top")(logits)
    assert top.argmax(-1).tolist() == [0, 2] and set(top.flatten().tolist()) == {0.0, -30.0}
    p = torch.exp(Answers("rounded", 1)(logits))
    assert torch.allclose(p, torch.tensor([[0.8, 0.2, 0.01], [0.0, 0.0, 0.9]]).clamp_min(0.01), atol=1e-6)
    with pytest.raises(ValueError, match="answers must be one of"):
        Answers("noisy")
    limit = RateLimit(rate=2.0, burst=2)
    assert [limit.wait_for("a") for _ in range(2)] == [0.0, 0.0] and 0.3 < limit.wait_for("a") <= 0.5
    assert limit.wait_for("b") == 0.0 and RateLimit().wait_for("a") == 0.0  # per key; rate 0: no limit


def test_a_server_without_the_serve_extra_says_what_to_install(monkeypatch, tmp_path):
    import importlib.util

    from bbtkit.serve.process import ServerProcess

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(ImportError, match=r"needs uvicorn: pip install -e '.\[serve\]'"):
        ServerProcess(tmp_path / "c.db", "tiny-gpt2").start()
