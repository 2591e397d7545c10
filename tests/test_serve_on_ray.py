"""The class server as two Ray Serve replicas (``python -m bbtkit serve --ray local --replicas 2``: a local Ray
instance that the server process starts and stops), with a tiny model: the class server's own tests, run
against the replicas: remote logits equal local ones, and 16 clients racing to overspend one key are charged
exactly its budget in total across both replicas, through the one ledger actor."""
import importlib.util
import os
import threading
import time
import urllib.request

import pytest

import torch

import bbtkit as bk
import test_serve as single  # the class server's tests, run here against the replicas
from bbtkit.api import remote as rm, wire
from bbtkit.serve.ledger import Ledger
from bbtkit.serve.process import ServerProcess

if not os.environ.get("BBTKIT_CLUSTER_REQUIRED") and importlib.util.find_spec("ray") is None:
    pytest.skip("needs the [cluster] extra (make test installs it, and never skips)", allow_module_level=True)

pytestmark = pytest.mark.slow


def replica_tags(url: str, n: int = 8) -> list[str]:
    """The replica tags of n concurrent GET /v1/info answers."""
    tags = []

    def ask():
        with urllib.request.urlopen(url + "/v1/info", timeout=30) as r:
            tags.append(r.headers["x-bbtkit-replica"])

    threads = [threading.Thread(target=ask) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return tags


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("ledger") / "class.db"
    with ServerProcess(db, single.MODEL, "--ray", "local", "--replicas", "2", "--replica-cpus", "0.5", "--allow-hidden",
                       "--max-wait-ms", "20",
                       timeout=600, stop_timeout=120, log=db.with_suffix(".log")) as s:
        s.ledger = Ledger(db)
        deadline = time.monotonic() + 180  # the proxy answers with the first replica and learns of the second later
        while len(set(replica_tags(s.url))) < 2 and time.monotonic() < deadline:
            time.sleep(1.0)
        yield s


@pytest.fixture(scope="module")
def lm():
    return bk.load_model(single.MODEL)


@pytest.fixture(scope="module")
def split():
    return bk.load_split("sst2", seed=13)


def test_both_replicas_answer_behind_one_address(server):
    tags = replica_tags(server.url, 32)
    assert len(set(tags)) == 2 and len(tags) == 32, tags


@pytest.mark.parametrize("position", ["after", "before"])
def test_remote_logits_equal_local_on_two_replicas(server, lm, split, position):
    single.test_remote_logits_equal_local_for_every_kind_of_call(server, lm, split, position)


def test_sixteen_clients_racing_to_overspend_one_key_are_charged_exactly_the_budget_across_replicas(server, split):
    single.test_sixteen_clients_racing_to_overspend_one_key_are_charged_exactly_the_budget(server, split)
    assert server.ledger.total_charged() == sum(k["used"] for k in server.ledger.keys())


def test_a_seeded_bbt_run_through_the_replicas_ends_where_the_local_run_ends(server, lm, split):
    single.test_a_seeded_bbt_run_through_the_server_ends_where_the_local_run_ends(server, lm, split)


def _post(url: str, path: str, body: bytes, key: str, content: str):
    req = urllib.request.Request(url + path, data=body, method="POST",
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": content})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read(), r.headers["x-bbtkit-replica"]


def test_each_replica_packs_concurrent_requests_on_a_session_registered_once(server, lm, split):
    """One session, registered on whichever replica took it; 16 clients send 4 populations each: both replicas
    answer it (the other one from the shared session), and each packs concurrent requests into one pass."""
    import json

    k = single.key(server, name="packing")
    payload, _ = rm.Remote.payload(bk.get_task("sst2"), split.train[:8], {})
    sid = json.loads(_post(server.url, "/v1/sessions", json.dumps(payload).encode(), k, "application/json")[0])["session"]
    body = wire.pack({"prompts": torch.zeros(2, 2, lm.hidden_size)}, {"pop": 2, "return_hidden": False,
                                                                      "per_example": False})
    answers = []

    def client():
        for _ in range(4):  # bounded: 4 requests per client
            data, tag = _post(server.url, f"/v1/sessions/{sid}/logits", body, k, "application/octet-stream")
            answers.append((tag, wire.unpack(data)[1]["packed"]))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(answers) == 64
    packed = {tag: max(p for t, p in answers if t == tag) for tag, _ in answers}
    assert len(packed) == 2 and min(packed.values()) > 1, packed
    assert bk.connect(server.url, k).usage()["calls"] == 128  # 2 candidates per request, each charged once
