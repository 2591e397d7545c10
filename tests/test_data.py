"""Tests for bbtkit.data: loaders on the shared data, the BBT sampler, path resolution, errors."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from bbtkit.data import splits as data, download
from bbtkit.data.splits import Example, Examples, TASK_LABELS, TASKS
from bbtkit.data.download import HF_SOURCES

SHARED = data.PROJECT_ROOT.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED / "index.json").is_file(),
    reason=f"shared benchmark data not found at {SHARED}; these tests read the real files",
)


@pytest.fixture
def shared(monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(SHARED))
    return json.loads((SHARED / "index.json").read_text())


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_task(root: Path, task: str = "sst2", seeds=(13, 42), k: int = 2, n_train: int = 0) -> Path:
    """A tiny fake data directory: root/<task>/ with few-shot folders, a test set, maybe a train set."""
    rows = lambda n, tag: [{"text_a": f"{tag} {i}", "text_b": None, "label": i % 2} for i in range(n)]
    for seed in seeds:
        write_jsonl(root / task / "fewshot" / f"{k}-{seed}" / "train.jsonl", rows(2 * k, f"train{seed}"))
        write_jsonl(root / task / "fewshot" / f"{k}-{seed}" / "dev.jsonl", rows(2 * k, f"dev{seed}"))
    write_jsonl(root / task / "test.jsonl", rows(10, "test"))
    if n_train:
        write_jsonl(root / task / "train.jsonl", rows(n_train, "full"))
    return root


def toy(n: int = 200, num_labels: int = 3) -> Examples:
    return Examples((Example(f"x{i}", None, i % num_labels) for i in range(n)), "toy")


# --- loading the shared data -------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize("task", ["sst2", "agnews"])
def test_fewshot_split_has_16_per_label_in_train_and_dev(shared, task):
    split = data.load_split(task, seed=42)
    n = len(shared["tasks"][task]["labels"])
    assert split.train.per_label(n) == [16] * n
    assert split.dev.per_label(n) == [16] * n
    assert split.train.name == f"{task}/train (16-shot, seed 42)"


@needs_shared
@pytest.mark.parametrize("task", TASKS)
def test_test_rows_and_labels_match_index_json(shared, task):
    info = shared["tasks"][task]
    test = data.load_split(task).test
    assert len(test) == info["files"]["test.jsonl"]["rows"]
    assert test.per_label(len(info["labels"])) == info["files"]["test.jsonl"]["per_label"]
    assert data.task_labels(task) == info["labels"] == TASK_LABELS[task]


@needs_shared
def test_same_seed_same_examples_different_seed_different(shared):
    a, b, c = (data.load_split("sst2", seed=s) for s in (42, 42, 13))
    assert list(a.train) == list(b.train) and list(a.dev) == list(b.dev)
    assert set(a.train).isdisjoint(c.train)


@needs_shared
def test_bbt_sampler_on_sst2_gives_16_plus_16_per_label_deterministically(shared):
    a = data.load_split("sst2", seed=42, sampler="bbt")
    assert a.train.per_label(2) == a.dev.per_label(2) == [16, 16]
    assert set(a.train).isdisjoint(a.dev)
    assert list(a.train) == list(data.load_split("sst2", seed=42, sampler="bbt").train)
    assert list(a.train) != list(data.load_split("sst2", seed=13, sampler="bbt").train)


@needs_shared
def test_bbt_sampler_without_full_train_set_says_so(shared):
    with pytest.raises(FileNotFoundError, match="only sst2 and mrpc"):
        data.load_split("qnli", sampler="bbt")


@needs_shared
def test_test_size_subset_is_fixed_whatever_the_fewshot_seed(shared):
    a = data.load_split("sst2", seed=42, test_size=100).test
    b = data.load_split("sst2", seed=13, test_size=100).test
    assert len(a) == 100 and list(a) == list(b)


# --- sampling helpers (no data needed) ----------------------------------------------------

def test_bbt_sample_matches_the_papers_shuffle_loop():
    ex = Examples((Example(f"x{i}", None, [0, 1, 1, 2, -1][i % 5]) for i in range(300)), "toy")
    train, dev = data.bbt_sample(ex, k=4, seed=7)
    # The original: np.random.seed(seed); np.random.shuffle(list_of_indices); walk in order.
    np.random.seed(7)
    order = list(range(len(ex)))
    np.random.shuffle(order)
    want_train, want_dev, counts = [], [], {}
    for i in order:
        y = ex[i].label
        if y < 0:
            continue
        c = counts.get(y, 0)
        (want_train if c < 4 else want_dev if c < 8 else []).append(ex[i])
        counts[y] = c + 1
    assert train == want_train and dev == want_dev
    assert Examples(train).per_label(3) == Examples(dev).per_label(3) == [4, 4, 4]
    assert set(train).isdisjoint(dev)


def test_bbt_sample_with_too_few_examples_asks_for_smaller_k():
    with pytest.raises(ValueError, match="lower k"):
        data.bbt_sample(toy(10, 2), k=4, seed=0)


def test_subset_is_deterministic_ordered_and_sized():
    ex = toy()
    a, b = ex.subset(50, seed=3), ex.subset(50, seed=3)
    assert len(a) == 50 and list(a) == list(b)
    assert list(a) != list(ex.subset(50, seed=4))
    pos = [int(e.text_a[1:]) for e in a]
    assert pos == sorted(pos)  # original order kept
    assert ex.subset(len(ex)) is ex and ex.subset(10**6) is ex
    with pytest.raises(ValueError, match="positive"):
        ex.subset(0)


def test_sample_per_class_gives_k_of_each_label_deterministically():
    ex = toy()
    a = ex.sample_per_class(5, seed=1)
    assert a.per_label(3) == [5, 5, 5]
    assert list(a) == list(ex.sample_per_class(5, seed=1))
    with pytest.raises(ValueError, match="fewer than k"):
        ex.sample_per_class(100)


def test_examples_index_slice_repr_and_labels():
    ex = toy(10, 2)
    assert isinstance(ex[0], Example) and ex[-1].text_a == "x9"
    head = ex[:4]
    assert isinstance(head, Examples) and len(head) == 4 and head.name == "toy[0:4]"
    assert ex.labels.dtype == np.int64 and ex.labels.shape == (10,)
    assert repr(ex) == "Examples('toy', n=10, per_label=[5, 5])"
    with pytest.raises(ValueError, match="outside"):
        ex.per_label(1)


# --- data directory resolution -----------------------------------------------------------

def test_data_dir_follows_the_documented_search_order(tmp_path, monkeypatch):
    cwd, proj = tmp_path / "a" / "work", tmp_path / "b" / "proj"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(data, "PROJECT_ROOT", proj)
    order = [tmp_path / "env", cwd / "data", proj / "data",
             tmp_path / "a" / "shared" / "data", tmp_path / "b" / "shared" / "data"]
    for d in order:
        make_task(d)
    monkeypatch.setenv(data.ENV_VAR, str(order[0]))
    assert data.data_dir("sst2") == order[0]
    monkeypatch.delenv(data.ENV_VAR)
    for d in order[1:]:
        assert data.data_dir("sst2") == d and data.data_dir() == d
        shutil.rmtree(d / "sst2")  # now the next place in the order should win
    with pytest.raises(FileNotFoundError, match=r"download_task\('sst2'\)") as err:
        data.data_dir("sst2")
    assert str(order[1]) in str(err.value) and "datasets" in str(err.value)


def test_data_dir_skips_places_without_the_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_task(tmp_path / "data", task="mrpc")
    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "proj")
    make_task(tmp_path / "proj" / "data", task="sst2")
    assert data.data_dir("mrpc") == tmp_path / "data"
    assert data.data_dir("sst2") == tmp_path / "proj" / "data"


def test_env_var_without_the_task_is_an_error_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(make_task(tmp_path, task="mrpc")))
    with pytest.raises(FileNotFoundError, match=data.ENV_VAR):
        data.data_dir("sst2")


# --- errors ------------------------------------------------------------------------------

def test_unknown_task_suggests_the_close_name():
    with pytest.raises(ValueError, match=r"Did you mean 'sst2'.*Known tasks: sst2, yelp"):
        data.load_split("sst-2")
    with pytest.raises(ValueError, match="Unknown sampler"):
        data.load_split("sst2", sampler="random")


def test_missing_seed_lists_the_seeds_that_exist(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(make_task(tmp_path, k=2, seeds=(13, 42))))
    assert data.load_split("sst2", seed=13, k=2).train.per_label(2) == [2, 2]
    with pytest.raises(FileNotFoundError, match="Seeds with k=2: 13, 42"):
        data.load_split("sst2", seed=7, k=2)


def test_empty_split_file_is_an_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(make_task(tmp_path, k=2)))
    dev = tmp_path / "sst2" / "fewshot" / "2-42" / "dev.jsonl"
    dev.write_text("\n")
    with pytest.raises(ValueError, match=f"{dev}.*empty"):
        data.load_split("sst2", seed=42, k=2)


def test_label_out_of_range_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(make_task(tmp_path, k=2)))
    write_jsonl(tmp_path / "sst2" / "test.jsonl", [{"text_a": "x", "text_b": None, "label": 2}])
    with pytest.raises(ValueError, match="2 labels"):
        data.load_split("sst2", seed=42, k=2)


def test_bad_json_line_names_file_and_line(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text_a": "a", "text_b": null, "label": 0}\n{"text_a": "b"}\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2"):
        data.load_examples(tmp_path / "x.jsonl")


def test_task_labels_prefer_a_downloaded_labels_json(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(make_task(tmp_path)))
    assert data.task_labels("sst2") == ["negative", "positive"]  # built in: no index.json here
    (tmp_path / "sst2" / "labels.json").write_text('["bad", "good"]')
    assert data.task_labels("sst2") == ["bad", "good"]


def test_bbt_sampler_reads_a_full_train_set(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(make_task(tmp_path, n_train=40)))
    split = data.load_split("sst2", seed=5, k=3, sampler="bbt")
    assert split.train.per_label(2) == split.dev.per_label(2) == [3, 3]
    assert split.train.name == "sst2/train (bbt 3-shot, seed 5)"


# --- converting Hugging Face rows --------------------------------------------------------

def test_hf_sources_cover_every_task():
    assert set(HF_SOURCES) == set(TASKS)
    assert {t: s[3] for t, s in HF_SOURCES.items() if s[3] == "validation"}.keys() == {"sst2", "mrpc", "qnli", "qqp"}


@pytest.mark.parametrize("task, row, want", [
    ("sst2", {"sentence": "a fine film ", "label": 1, "idx": 0}, ("a fine film", None, 1)),
    ("mrpc", {"sentence1": "A.", "sentence2": "B.", "label": 0, "idx": 3}, ("A.", "B.", 0)),
    ("qnli", {"question": "Q?", "sentence": "S.", "label": 1, "idx": 0}, ("Q?", "S.", 1)),
    ("qqp", {"question1": "Q1?", "question2": "Q2?", "label": 1, "idx": 0}, ("Q1?", "Q2?", 1)),
    ("snli", {"premise": "P.", "hypothesis": "H.", "label": 2}, ("P.", "H.", 2)),
    ("agnews", {"text": "Title - body.", "label": 3}, ("Title - body.", None, 3)),
    ("dbpedia", {"title": "Acme", "content": " Acme is a firm. ", "label": 0}, ("Acme is a firm.", None, 0)),
    ("yelp", {"text": "Great.\\nWould return.", "label": 1}, ("Great. Would return.", None, 1)),
])
def test_rows_to_jsonl_maps_hf_fields(task, row, want):
    assert download.rows_to_jsonl(task, [row]) == [dict(zip(("text_a", "text_b", "label"), want))]


def test_rows_to_jsonl_drops_unlabelled_snli_pairs():
    rows = [{"premise": "P", "hypothesis": "H", "label": lab} for lab in (0, -1, 1, -1, 2)]
    assert [r["label"] for r in download.rows_to_jsonl("snli", rows)] == [0, 1, 2]


def test_download_task_without_datasets_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match="pip install datasets"):
        download.download_task("sst2", dest=tmp_path)


def test_the_default_places_are_found_from_the_project_root(monkeypatch):
    """Without BBTKIT_DATA, the data directory is searched beside the project (../shared/data where the course
    keeps it), and the leaderboard's runs are the project's: both are found from the package's own folder."""
    from pathlib import Path

    from bbtkit.course import leaderboard as lb
    from bbtkit.data import splits

    root = Path(__file__).resolve().parents[1]
    assert splits.PROJECT_ROOT == root and lb.ROOT == root / "runs" / "leaderboard"
    monkeypatch.delenv("BBTKIT_DATA", raising=False)
    monkeypatch.chdir(root)
    if (root.parent / "shared" / "data" / "sst2").is_dir():
        assert splits.data_dir("sst2").resolve() == (root.parent / "shared" / "data").resolve()
