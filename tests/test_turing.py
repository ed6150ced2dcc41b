"""The visual Turing test: the page (self-contained, blinded, deterministic), the scoring of
readers (known answers, Fleiss' kappa), the command line, and a real reader: headless
Chromium opens the page from a file, answers every slice, and its score and answers file
agree with the key.

Set MRIGAN_UPDATE_SCREENSHOTS=1 to rewrite docs/turing_page.png from the browser test (with
phantom slices and the reference model's; slower); otherwise nothing is written to the repo.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import re
import shutil
import time
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import build_squares_dataset
from mrigan_tf import cli
from mrigan_tf.atomic import atomic_file
from mrigan_tf.data.contract import PreparedDataset, load_dataset, save_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.evaluation.turing import (ANSWERS_FORMAT, KEY_FILE, PAGE_FILE, answer_hash,
                                         fleiss_kappa, matching_draw, score_turing_answers,
                                         write_turing_page)

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "turing_page.png"
UPDATE_SCREENSHOTS = os.environ.get("MRIGAN_UPDATE_SCREENSHOTS") == "1"
N = 12   # the squares' test split holds 8 slices: 6 real + 6 synthetic fit


# ## Fixtures: the toy squares (real) and a look-alike set in the synthetic role

def build_synthetic_squares(seed: int = 7) -> PreparedDataset:
    """Squares drawn with another seed, dressed as a generated set (subjects, splits, meta)."""
    ds = build_squares_dataset(n_subjects=4, slices=6, seed=seed)
    n = len(ds)
    ds.subjects = np.asarray([f"synthetic-{i:06d}" for i in range(n)])
    ds.split = np.where(np.arange(n) < n - 2, "train", "val")
    ds.meta.update(source="synthetic", model="cwgan-gp")
    return ds


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory) -> Path:
    return save_dataset(build_synthetic_squares(), tmp_path_factory.mktemp("synthetic") / "data")


@pytest.fixture(scope="module")
def page_dir(tmp_path_factory, squares_dir, synthetic_dir) -> Path:
    out = tmp_path_factory.mktemp("turing") / "page"
    write_turing_page(squares_dir, synthetic_dir, out, n=N, seed=3, masks=True)
    return out


def page_data(page_dir: Path) -> dict:
    html = (page_dir / PAGE_FILE).read_text()
    match = re.search(r'<script type="application/json" id="turing-data">(.*?)</script>', html,
                      re.S)
    return json.loads(match.group(1))


def read_key(page_dir: Path) -> dict:
    return json.loads((page_dir / KEY_FILE).read_text())


def answers_file(path: Path, key: dict, answers: dict[str, str], reader: str = "reader",
                 page_id: str | None = None) -> Path:
    path.write_text(json.dumps({
        "format": ANSWERS_FORMAT, "page_id": page_id or key["page_id"], "reader": reader,
        "timestamp": "2024-01-01T00:00:00Z", "slices": [s["id"] for s in key["slices"]],
        "answers": answers}))
    return path


# ## The page

class _Attributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [value or "" for name, value in attrs if name in ("src", "href", "action")]


def test_page_is_self_contained(page_dir):
    html = (page_dir / PAGE_FILE).read_text()
    parsed = _Attributes()
    parsed.feed(html)
    assert not [u for u in parsed.urls if not u.startswith("data:")], parsed.urls
    assert "link" not in parsed.tags and "iframe" not in parsed.tags
    assert not re.search(r"https?://|@import|url\(", html)
    assert "default-src 'none'" in html    # the CSP: the browser itself refuses any request
    data = page_data(page_dir)
    assert len(data["slices"]) == N
    for s in data["slices"]:
        assert s["image"].startswith("data:image/png;base64,")
        assert s["overlay"].startswith("data:image/png;base64,")
    assert sorted(os.listdir(page_dir)) == ["README.txt", KEY_FILE, PAGE_FILE]


def _png(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_page_holds_no_label_and_not_the_key(page_dir, squares_dir, synthetic_dir):
    html = (page_dir / PAGE_FILE).read_text()
    key, data = read_key(page_dir), page_data(page_dir)
    # Per slice, the page has an id, pictures and a hash: nothing that names its source.
    assert all(set(s) == {"id", "image", "overlay", "hash"} for s in data["slices"])
    assert [s["id"] for s in data["slices"]] == [s["id"] for s in key["slices"]]
    data_text = json.dumps(data)
    for word in ('"real"', '"synthetic"', "truth", "toy-", "synthetic-0", str(squares_dir),
                 str(synthetic_dir), "subject"):
        assert word not in data_text, word
    for s in key["slices"]:
        assert s["subject"] not in html
    assert json.dumps(key["slices"]) not in html and KEY_FILE not in html
    # The hashes: right answers hash to the stored value, wrong ones do not.
    for s, shown in zip(key["slices"], data["slices"]):
        wrong = "real" if s["truth"] == "synthetic" else "synthetic"
        assert shown["hash"] == answer_hash(data["salt"], s["id"], s["truth"])
        assert shown["hash"] != answer_hash(data["salt"], s["id"], wrong)
    # Real and synthetic pictures look alike to a parser too: same size, mode, no metadata.
    pictures = [_png(s["image"]) for s in data["slices"]]
    assert {(p.size, p.mode) for p in pictures} == {((16, 16), "L")}
    assert all(not p.info for p in pictures)
    assert {_png(s["overlay"]).mode for s in data["slices"]} == {"RGB"}


def test_half_real_from_the_test_split_in_a_seeded_order(page_dir, squares_dir, synthetic_dir,
                                                          tmp_path):
    key = read_key(page_dir)
    real = [s for s in key["slices"] if s["truth"] == "real"]
    assert len(real) == N // 2 and len(key["slices"]) == N and key["real"]["split"] == "test"
    squares = load_dataset(squares_dir)
    assert {squares.split[s["index"]] for s in real} == {"test"}
    # The synthetic half copies the real half's class mix: a tumor is no clue to the source.
    mix = {t: Counter(s["label"] for s in key["slices"] if s["truth"] == t)
           for t in ("real", "synthetic")}
    assert mix["real"] == mix["synthetic"] and set(mix["real"]) == {"healthy", "tumor"}
    # Same inputs and seed: the same page, byte for byte; another seed: another draw and order.
    again = write_turing_page(squares_dir, synthetic_dir, tmp_path / "again", n=N, seed=3,
                              masks=True)
    assert again.read_bytes() == (page_dir / PAGE_FILE).read_bytes()
    other = write_turing_page(squares_dir, synthetic_dir, tmp_path / "other", n=N, seed=4,
                              masks=True)
    other_key = json.loads((other.parent / KEY_FILE).read_text())
    assert other_key["page_id"] != key["page_id"]
    assert ([(s["truth"], s["index"]) for s in other_key["slices"]]
            != [(s["truth"], s["index"]) for s in key["slices"]])
    # An odd n: the extra slice is synthetic. Without masks there is no overlay.
    odd = write_turing_page(squares_dir, synthetic_dir, tmp_path / "odd", n=5, seed=0)
    odd_key = json.loads((odd.parent / KEY_FILE).read_text())
    assert [s["truth"] for s in odd_key["slices"]].count("real") == 2
    assert [s["id"] for s in odd_key["slices"]] == [f"slice-{i}" for i in range(1, 6)]
    assert all(s["overlay"] is None for s in page_data(odd.parent)["slices"])


def test_matching_draw_fills_a_missing_class_at_random():
    ds = build_synthetic_squares()
    ds.labels = np.ones_like(ds.labels)   # the synthetic set made tumors only
    rows = matching_draw(np.random.default_rng(0), ds, ["healthy", "tumor", "tumor"], 4)
    assert len(set(rows.tolist())) == 4 and rows.max() < len(ds)
    ds.labels[:3] = 0
    rows = matching_draw(np.random.default_rng(0), ds, ["healthy", "healthy", "tumor"], 3)
    assert sorted(ds.labels[rows].tolist()) == [0, 0, 1]


def test_real_set_without_test_split_uses_every_slice(tmp_path, synthetic_dir):
    real = build_squares_dataset(n_subjects=2, slices=3)
    real.split = np.full(len(real), "train")
    real_dir = save_dataset(real, tmp_path / "real")
    page = write_turing_page(real_dir, synthetic_dir, tmp_path / "page", n=12)
    key = json.loads((page.parent / KEY_FILE).read_text())
    assert key["real"]["split"] == "all"
    assert sorted(s["index"] for s in key["slices"] if s["truth"] == "real") == list(range(6))


def test_bad_inputs_are_data_errors_naming_the_file(tmp_path, squares_dir, synthetic_dir):
    with pytest.raises(DataError, match="test split holds 8 slices; --n 18 asks for 9 real") as e:
        write_turing_page(squares_dir, synthetic_dir, tmp_path / "p", n=18)
    assert e.value.path == str(squares_dir)
    with pytest.raises(DataError, match="holds 24 slices; --n 60 asks for 30 synthetic"):
        write_turing_page(build_big_real(tmp_path), synthetic_dir, tmp_path / "p", n=60)
    with pytest.raises(DataError, match="dataset directory not found") as e:
        write_turing_page(tmp_path / "missing", synthetic_dir, tmp_path / "p")
    assert e.value.path == str(tmp_path / "missing")
    bigger = save_dataset(build_squares_dataset(size=32), tmp_path / "big32")
    with pytest.raises(DataError, match="32x32 with 1 channel, the real ones 16x16"):
        write_turing_page(squares_dir, bigger, tmp_path / "p", n=4)
    with pytest.raises(MriganError, match="at least 2"):
        write_turing_page(squares_dir, synthetic_dir, tmp_path / "p", n=1)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="already exists"):
        write_turing_page(squares_dir, synthetic_dir, taken, n=4)
    assert os.listdir(taken) == ["mine.txt"]
    assert not (tmp_path / "p").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def build_big_real(tmp_path: Path) -> Path:
    big = build_squares_dataset(n_subjects=10, slices=8)
    big.split = np.where(big.split == "train", "test", big.split)
    return save_dataset(big, tmp_path / "big_real")


# ## Scoring

# Fleiss (1971)'s statistic on the worked example of its Wikipedia article: 10 subjects,
# 14 raters, 5 categories; P_bar = 0.378, P_e = 0.213, kappa = 0.210.
FLEISS_EXAMPLE = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                  [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                  [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


def test_fleiss_kappa_known_answers():
    assert fleiss_kappa(FLEISS_EXAMPLE) == pytest.approx(0.2099307, abs=1e-6)
    assert round(fleiss_kappa(FLEISS_EXAMPLE), 3) == 0.210
    # By hand: 3 raters, 2 categories. P_i = 1, 1, 1/3, 1/3 -> P_bar = 2/3; p = (1/2, 1/2)
    # -> P_e = 1/2; kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
    assert fleiss_kappa([[3, 0], [0, 3], [2, 1], [1, 2]]) == pytest.approx(1 / 3)
    assert fleiss_kappa([[2, 0], [0, 2], [2, 0]]) == pytest.approx(1.0)
    # Raters who always split evenly agree less than chance: kappa = -1/(n-1) = -1.
    assert fleiss_kappa([[1, 1], [1, 1]]) == pytest.approx(-1.0)
    assert math.isnan(fleiss_kappa([[2, 0], [2, 0]]))
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[2, 0], [1, 0]])


def test_scores_of_two_readers_known_answers(page_dir, tmp_path):
    key = read_key(page_dir)
    truth = {s["id"]: s["truth"] for s in key["slices"]}
    perfect = answers_file(tmp_path / "a.json", key, dict(truth), reader="Ada")
    always_synthetic = answers_file(tmp_path / "b.json", key,
                                    {i: "synthetic" for i in truth}, reader="Bo")
    report = score_turing_answers([perfect, always_synthetic], page_dir / KEY_FILE,
                                  out=tmp_path / "report.json")
    ada, bo = report["readers"]
    assert (ada["reader"], ada["accuracy"], ada["sensitivity"], ada["specificity"]) == \
        ("Ada", 1.0, 1.0, 1.0)
    assert ada["p_value"] == pytest.approx(2 * 0.5 ** N)
    assert (bo["accuracy"], bo["sensitivity"], bo["specificity"], bo["p_value"]) == \
        (0.5, 1.0, 0.0, 1.0)
    pooled = report["pooled"]
    assert (pooled["correct"], pooled["answered"], pooled["sensitivity"],
            pooled["specificity"]) == (18, 24, 1.0, 0.5)
    # Two-sided: 2 P(X >= 18), X ~ Binomial(24, 1/2).
    tail = sum(math.comb(24, k) for k in range(18, 25)) / 2 ** 24
    assert pooled["p_value"] == pytest.approx(2 * tail)
    assert pooled["accuracy_ci95"][0] < 0.75 < pooled["accuracy_ci95"][1]
    # Synthetic slices: both say synthetic (P_i = 1); real: one each way (P_i = 0).
    # P_bar = 1/2, p = (1/4, 3/4), P_e = 5/8, kappa = (1/2 - 5/8) / (3/8) = -1/3.
    assert report["fleiss_kappa"] == pytest.approx(-1 / 3)
    assert report["kappa_slices"] == N
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_partial_answers_and_unnamed_readers(page_dir, tmp_path):
    key = read_key(page_dir)
    truth = {s["id"]: s["truth"] for s in key["slices"]}
    real = [i for i in truth if truth[i] == "real"]
    synthetic = [i for i in truth if truth[i] == "synthetic"]
    pair = {real[0]: "real", synthetic[0]: "synthetic"}
    first = answers_file(tmp_path / "first.json", key, pair, reader="")
    second = answers_file(tmp_path / "second.json", key, dict(truth), reader=" ")
    report = score_turing_answers([first, second], page_dir / KEY_FILE)
    assert [r["reader"] for r in report["readers"]] == ["first", "second"]
    assert [r["answered"] for r in report["readers"]] == [2, N]
    # Kappa on the two slices both answered, one of each class, both readers right: 1.
    assert report["kappa_slices"] == 2 and report["fleiss_kappa"] == pytest.approx(1.0)
    # Only real slices in common: chance agreement is 1 and kappa undefined (None).
    only_real = answers_file(tmp_path / "third.json", key, {real[0]: "real"}, reader="")
    assert score_turing_answers([only_real, second], page_dir / KEY_FILE)["fleiss_kappa"] is None
    alone = score_turing_answers([first], page_dir / KEY_FILE)
    assert alone["fleiss_kappa"] is None and alone["kappa_slices"] == 0
    # Two files of one reader stay apart.
    again = answers_file(tmp_path / "again.json", key, pair, reader="Ada")
    once = answers_file(tmp_path / "once.json", key, pair, reader="Ada")
    report = score_turing_answers([again, once], page_dir / KEY_FILE)
    names = [r["reader"] for r in report["readers"]]
    assert names == ["Ada", "Ada (once.json)"]


def test_bad_answers_files_are_data_errors(page_dir, tmp_path):
    key = read_key(page_dir)
    key_file = page_dir / KEY_FILE
    first = key["slices"][0]["id"]
    cases = {
        "another page": (answers_file(tmp_path / "other.json", key, {first: "real"},
                                      page_id="0123456789abcdef"), "answers for another page"),
        "unknown slice": (answers_file(tmp_path / "unknown.json", key, {"slice-99": "real"}),
                          "slice ids not on page"),
        "bad value": (answers_file(tmp_path / "value.json", key, {first: "fake"}),
                      "must be \"real\" or \"synthetic\""),
        "empty": (answers_file(tmp_path / "empty.json", key, {}), "holds no answers"),
        "not json": (tmp_path / "broken.json", "not valid JSON"),
        "missing": (tmp_path / "nowhere.json", "answers file not found"),
        "a key": (key_file, "not a Turing-test answers file"),
    }
    (tmp_path / "broken.json").write_text("{")
    for name, (path, message) in cases.items():
        with pytest.raises(DataError, match=re.escape(message)) as e:
            score_turing_answers([path], key_file)
        assert e.value.path == str(path), name
    good = answers_file(tmp_path / "good.json", key, {first: "real"})
    with pytest.raises(DataError, match="not a Turing-test answer key") as e:
        score_turing_answers([good], good)
    assert e.value.path == str(good)
    with pytest.raises(DataError, match="answer key not found"):
        score_turing_answers([good], tmp_path / "key.json")
    with pytest.raises(MriganError, match="no answers files"):
        score_turing_answers([], key_file)


# ## The command line

def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("mrigan-tf turing: error: ")
    return lines[0]


def test_cli_writes_a_page_and_scores_answers(tmp_path, capsys, squares_dir, synthetic_dir):
    out = tmp_path / "page"
    assert cli.main(["turing", "--real", str(squares_dir), "--synthetic", str(synthetic_dir),
                     "--out", str(out), "--n", "8", "--seed", "2", "--masks"]) == 0
    assert "key.json" in capsys.readouterr().out
    key = read_key(out)
    assert key["n"] == 8 and key["seed"] == 2 and key["masks"] is True
    truth = {s["id"]: s["truth"] for s in key["slices"]}
    files = [answers_file(tmp_path / "ada.json", key, truth, reader="Ada"),
             answers_file(tmp_path / "bo.json", key, {i: "real" for i in truth}, reader="Bo")]
    report = tmp_path / "report.json"
    assert cli.main(["turing", "--score", *map(str, files), "--key", str(out / KEY_FILE),
                     "--out", str(report)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^Ada\s+8\s+100%", printed, re.M)
    assert re.search(r"^Bo\s+8\s+50%.*\s+0%\s+100%", printed, re.M)
    assert re.search(r"^pooled\s+16\s+75%", printed, re.M) and "Fleiss' kappa" in printed
    assert json.loads(report.read_text())["pooled"]["correct"] == 12
    # The report is not overwritten silently.
    assert cli.main(["turing", "--score", str(files[0]), "--key", str(out / KEY_FILE),
                     "--out", str(report)]) == 2
    assert "already exists" in _one_line_error(capsys.readouterr().err)


def test_cli_errors_are_one_line(tmp_path, capsys, squares_dir, synthetic_dir, page_dir):
    key = read_key(page_dir)
    foreign = answers_file(tmp_path / "foreign.json", key, {key["slices"][0]["id"]: "real"},
                           page_id="ffffffffffffffff")
    real, synthetic = str(squares_dir), str(synthetic_dir)
    cases = [
        (["--real", real, "--synthetic", synthetic, "--out", str(tmp_path / "p"), "--n", "40"],
         [real, "asks for 20 real slices"]),
        (["--real", str(tmp_path / "nope"), "--synthetic", synthetic, "--out",
          str(tmp_path / "p")], [str(tmp_path / "nope"), "not found"]),
        (["--real", real, "--out", str(tmp_path / "p")], ["--synthetic required"]),
        (["--score", str(foreign)], ["--score needs --key"]),
        (["--score", str(foreign), "--key", str(page_dir / KEY_FILE)],
         [str(foreign), "answers for another page"]),
        (["--score", str(foreign), "--key", str(page_dir / KEY_FILE), "--real", real],
         ["--real", "not with --score"]),
    ]
    for argv, needles in cases:
        assert cli.main(["turing", *argv]) == 2, argv
        line = _one_line_error(capsys.readouterr().err)
        assert all(n in line for n in needles), (argv, line)
    assert not (tmp_path / "p").exists()
    with pytest.raises(SystemExit) as e:
        cli.main(["turing", "--real", real, "--synthetic", synthetic, "--out", "x", "--n", "0"])
    assert e.value.code == 2


# ## A reader in a real browser

def _browser_paths() -> tuple[str, str] | None:
    chromium = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p
                     and Path(p).exists()), None)
    driver = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p
                   and Path(p).exists()), None)
    return (chromium, driver) if chromium and driver else None


@pytest.fixture
def browser(tmp_path):
    paths = _browser_paths()
    if paths is None:
        pytest.skip("chromium not installed: apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture
def browser_page(page_dir, tmp_path_factory) -> Path:
    """The squares page; for the README's screenshot, phantom slices and the reference model's."""
    if not UPDATE_SCREENSHOTS:
        return page_dir
    from mrigan_tf.data.phantom import PhantomConfig, write_phantom
    from mrigan_tf.synth import write_synthetic_dataset

    root = tmp_path_factory.mktemp("screenshot")
    real = root / "phantom"
    write_phantom(real, PhantomConfig(subjects=4, size=64, seed=0), workers=1, progress=False)
    synthetic = root / "synthetic"
    write_synthetic_dataset(REPO / "mrigan_tf" / "reference" / "phantom64", synthetic, n=40,
                            seed=0, progress=False)
    out = root / "page"
    write_turing_page(real, synthetic, out, n=20, seed=0, masks=True)
    return out


def _planned_answers(key: dict) -> list[str]:
    """The truth, except on every third slice: a reader who is right two times in three."""
    flip = {"real": "synthetic", "synthetic": "real"}
    return [flip[s["truth"]] if k % 3 == 0 else s["truth"] for k, s in enumerate(key["slices"])]


def test_a_reader_in_chromium(browser, browser_page, tmp_path):
    key = read_key(browser_page)
    n = len(key["slices"])
    planned = _planned_answers(key)
    driver = browser
    driver.get((browser_page / PAGE_FILE).as_uri())
    by_id = lambda name: driver.find_element(By.ID, name)  # noqa: E731
    keys = lambda text: ActionChains(driver).send_keys(text).perform()  # noqa: E731
    # Both SHA-256s of the page agree with Python's; file:// is a secure context in Chromium.
    for text in ("abc", "salt:slice-01:real", "é" * 40, "x" * 55, "y" * 64):
        expected = hashlib.sha256(text.encode()).hexdigest()
        assert driver.execute_script("return turingSha256.fallback(arguments[0])", text) == expected
    assert driver.execute_script("return window.isSecureContext && !!turingSha256.subtle")

    # Typing a name does not answer slices (R and S are in it).
    by_id("reader").send_keys("Dr Ross")
    assert by_id("progress-text").text.startswith("0 of")
    driver.execute_script("document.activeElement.blur()")
    assert not by_id("finish").is_enabled()

    for k, (s, answer) in enumerate(zip(key["slices"], planned)):
        assert by_id("slice-id").text == s["id"]
        if k % 2:
            by_id("btn-" + answer).click()
        else:
            keys(answer[0])
        if k == n // 2:   # half way: back, forward, masks on
            keys("\ue012")   # arrow left
            assert by_id("slice-id").text == s["id"] and "your answer: " + answer in \
                by_id("choice").text
            keys("\ue014")   # arrow right
            plain = by_id("slice").get_attribute("src")
            keys("m")
            assert by_id("slice").get_attribute("src") != plain
            assert "on" in by_id("toggle-masks").text
    assert by_id("progress-text").text.startswith(f"{n} of {n} answered")
    by_id("finish").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "result").is_displayed())

    truths = [s["truth"] for s in key["slices"]]
    expected = {
        "score-accuracy": (sum(a == t for a, t in zip(planned, truths)), n),
        "score-sensitivity": (sum(a == t == "synthetic" for a, t in zip(planned, truths)),
                              truths.count("synthetic")),
        "score-specificity": (sum(a == t == "real" for a, t in zip(planned, truths)),
                              truths.count("real")),
    }
    for element, (part, whole) in expected.items():
        shown = by_id(element)
        assert (int(shown.get_attribute("data-part")), int(shown.get_attribute("data-whole"))) \
            == (part, whole), element
        assert shown.text == f"{100 * part / whole:.0f}%"
    # Scored: answers are locked.
    keys("s")
    assert not by_id("btn-real").is_enabled()

    by_id("download").click()
    deadline = time.monotonic() + 15
    while not (files := [p for p in driver.downloads.glob("*.json")]) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(files) == 1, list(driver.downloads.iterdir())
    downloaded = json.loads(files[0].read_text())
    assert files[0].name == f"turing-answers-Dr_Ross-{key['page_id']}.json"
    assert downloaded["answers"] == driver.execute_script("return turingAnswers().answers")
    assert downloaded["answers"] == {s["id"]: a for s, a in zip(key["slices"], planned)}
    assert downloaded["reader"] == "Dr Ross" and downloaded["finished"] is True
    report = score_turing_answers(files, browser_page / KEY_FILE)
    reader = report["readers"][0]
    assert reader["reader"] == "Dr Ross"
    assert (reader["correct"], reader["synthetic_called_synthetic"], reader["real_called_real"]) \
        == tuple(expected[e][0] for e in expected)

    # A CSP violation or a script error would show here.
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    if UPDATE_SCREENSHOTS:
        # The README's picture: every slice with its answer, a tumor slice under its mask, the
        # score, in a 1280 x 800 viewport.
        tumor = next(k for k, s in enumerate(key["slices"]) if s["label"] == "tumor")
        driver.find_elements(By.CSS_SELECTOR, "#grid .thumb")[tumor].click()
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1280, "height": 800, "deviceScaleFactor": 1,
                                "mobile": False})
        driver.execute_script("window.scrollTo(0, 0)")
        with atomic_file(SCREENSHOT) as tmp:
            tmp.write_bytes(driver.get_screenshot_as_png())
        SCREENSHOT.chmod(0o644)
