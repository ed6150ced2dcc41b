"""
Title: A visual Turing test: can a reader tell real slices from synthetic ones?
Description: One self-contained HTML page of blinded real and synthetic slices that a reader
labels real or synthetic, a separate answer key, and the scoring of one or more readers
(accuracy, sensitivity, specificity, a binomial test against chance, Fleiss' kappa)
(``mrigan-tf turing``).

## Why a reader, when there are metrics

FID and a classifier two-sample test say whether *features* differ; the medical GAN papers
also ask people. Kazuhiro et al. (2018) showed radiologists DCGAN brain slices mixed with real
ones: they were 55-83% accurate; Park et al. (2021) report 59%. 50% is chance: a reader who
cannot tell the two apart. The figure means little alone: beside it stands the binomial test
against 0.5, the confidence interval, and how much readers agree with each other (Fleiss'
kappa: readers who agree on which slices look fake have found a real artefact, readers who
agree no better than chance are guessing).

## The page

``write_turing_page(real, synthetic, out)`` draws ``n`` slices, half from the real dataset's
test split (held-out subjects; every slice when it has none), half from the synthetic set
with the same class mix as the real half (so that a tumor, or none, is no clue), renders each
the same way (PNG, [-1, 1] -> grey, channels side by side, optionally a second
picture with the tumor mask tinted red, toggled with M), shuffles them with the seed and
numbers them in page order (``slice-01``...), so an id says nothing about its source. The page
(``turing.html``) needs no network and no server: open it from a file. The reader answers with
the buttons or R / S, moves with the arrows, and at the end sees their accuracy, sensitivity
(synthetic called synthetic) and specificity (real called real), then downloads their answers
as JSON.

## Keeping the key out of the page

The answers live in ``key.json`` beside the page, never in it: send readers ``turing.html``
only. To score a reader without the key, the page holds, per slice, SHA-256 of
``salt:slice-id:truth`` (a per-page salt), and compares the hash of each answer with it (the
browser's SubtleCrypto, or a small pure-JS SHA-256 where SubtleCrypto is unavailable). Nothing
in the source says which slice is which; the PNGs carry no metadata. This stops a curious
reader, not a determined one: with two possible answers per slice, anyone who hashes both in
a JavaScript console recovers the key. Answers are locked once scored, and the page shows the
totals only, never which slices were wrong. The authoritative scores are
``score_turing_answers`` against ``key.json``.

## Scoring readers

``score_turing_answers(answer_files, key_file)``: per reader and pooled over readers,
accuracy with its exact 95% interval, sensitivity, specificity and a two-sided binomial test
of the accuracy against 0.5 (pooled judgments of several readers on the same slices are not
independent: read the pooled p-value as descriptive), and Fleiss' kappa across readers on the
slices every reader answered.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import stats

from mrigan_tf import __version__
from mrigan_tf.atomic import atomic_directory, atomic_file
from mrigan_tf.data.contract import PreparedDataset, load_dataset
from mrigan_tf.errors import DataError, MriganError
from mrigan_tf.visualization import overlay_mask

PAGE_FILE = "turing.html"
KEY_FILE = "key.json"
README_FILE = "README.txt"
ANSWERS_FORMAT = "mrigan-turing-answers/1"
KEY_FORMAT = "mrigan-turing-key/1"
REAL, SYNTHETIC = "real", "synthetic"
ANSWERS = (REAL, SYNTHETIC)


# ## Drawing the slices

@dataclasses.dataclass
class TuringSlice:
    """One slice on the page: its blinded id, where it came from, and its pictures."""

    id: str
    truth: str                 # "real" or "synthetic"; goes to the key, never to the page
    index: int                 # row in its dataset.npz
    subject: str
    label: str                 # class name
    image: np.ndarray          # (H, W, C) in [-1, 1]
    mask: np.ndarray           # (H, W, 1) in {0, 1}


def real_pool(real: PreparedDataset) -> tuple[np.ndarray, str]:
    """Rows of the real dataset a page may show: its test split, or every slice without one."""
    test = np.flatnonzero(real.split == "test")
    if test.size:
        return test, "test"
    return np.arange(len(real)), "all"


def draw_slices(real: PreparedDataset, synthetic: PreparedDataset, n: int, seed: int,
                real_where: str | os.PathLike, synthetic_where: str | os.PathLike
                ) -> tuple[list[TuringSlice], str]:
    """``n // 2`` real and ``n - n // 2`` synthetic slices in a seeded random page order."""
    if n < 2:
        raise MriganError(f"--n must be at least 2 (half real, half synthetic), got {n}")
    if synthetic.images.shape[1:] != real.images.shape[1:]:
        raise DataError(synthetic_where, f"synthetic slices are {_shape_text(synthetic)}, the real "
                                         f"ones {_shape_text(real)}: a reader would tell them "
                                         "apart by size alone; generate them at the real size")
    pool, real_split = real_pool(real)
    n_real, n_synthetic = n // 2, n - n // 2
    if n_real > pool.size:
        where = "test split" if real_split == "test" else "dataset"
        raise DataError(real_where, f"the real {where} holds {pool.size} slices; --n {n} asks for "
                                    f"{n_real} real slices (half of n): lower --n")
    if n_synthetic > len(synthetic):
        raise DataError(synthetic_where, f"the synthetic dataset holds {len(synthetic)} slices; "
                                         f"--n {n} asks for {n_synthetic} synthetic slices: "
                                         "lower --n or generate more")
    rng = np.random.default_rng(seed)
    real_rows = np.sort(rng.choice(pool, n_real, replace=False))
    wanted = [real.class_names[int(k)] for k in real.labels[real_rows]]
    synthetic_rows = matching_draw(rng, synthetic, wanted, n_synthetic)
    chosen = ([(REAL, int(i)) for i in real_rows]
              + [(SYNTHETIC, int(i)) for i in synthetic_rows])
    order = rng.permutation(n)
    width = len(str(n))
    slices = []
    for position, k in enumerate(order):
        truth, index = chosen[k]
        ds = real if truth == REAL else synthetic
        slices.append(TuringSlice(id=f"slice-{position + 1:0{width}d}", truth=truth, index=index,
                                  subject=str(ds.subjects[index]),
                                  label=ds.class_names[int(ds.labels[index])],
                                  image=ds.images[index], mask=ds.masks[index]))
    return slices, real_split


def matching_draw(rng: np.random.Generator, ds: PreparedDataset, classes: Sequence[str],
                  n: int) -> np.ndarray:
    """``n`` rows of ``ds``, of the given class names as far as it has them, the rest at random.

    The synthetic slices copy the real draw's class mix, so that a tumor (or its absence) is
    no clue to the source.
    """
    names = np.asarray(ds.class_names)[ds.labels]
    rows: list[int] = []
    for name in dict.fromkeys(classes):
        candidates = np.flatnonzero(names == name)
        take = min(list(classes).count(name), candidates.size)
        rows += rng.choice(candidates, take, replace=False).tolist()
    rest = np.setdiff1d(np.arange(len(ds)), rows)
    rows += rng.choice(rest, n - len(rows), replace=False).tolist()
    return np.sort(np.asarray(rows, dtype=np.int64))


def _shape_text(ds: PreparedDataset) -> str:
    _, h, w, c = ds.images.shape
    return f"{h}x{w} with {c} channel{'s' if c > 1 else ''}"


# ## Rendering: the same pipeline for real and synthetic slices

def slice_png(image: np.ndarray, mask: np.ndarray | None = None) -> bytes:
    """A PNG of one slice: [-1, 1] -> grey, channels side by side, the mask tinted red.

    Fixed intensity mapping (no per-slice contrast stretch), no metadata in the file: the
    picture is all a reader gets.
    """
    channels = [image[..., c] for c in range(image.shape[-1])]
    if mask is None:
        tiles = [(np.clip(ch, -1.0, 1.0) + 1.0) / 2.0 for ch in channels]
    else:
        tiles = [overlay_mask(ch, mask) for ch in channels]
    picture = np.round(np.concatenate(tiles, axis=1) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def answer_hash(salt: str, slice_id: str, answer: str) -> str:
    """What the page stores per slice: SHA-256 of ``salt:slice-id:truth`` (hex)."""
    return hashlib.sha256(f"{salt}:{slice_id}:{answer}".encode("utf-8")).hexdigest()


# ## Writing the page and its key

def write_turing_page(real_dir: str | os.PathLike, synthetic_dir: str | os.PathLike,
                      out_dir: str | os.PathLike, n: int = 50, seed: int = 0,
                      masks: bool = False, overwrite: bool = False) -> Path:
    """Write ``turing.html`` (for readers), ``key.json`` (keep it) and ``README.txt``.

    ``out_dir`` appears complete or not at all. Same datasets, ``n``, ``seed`` and ``masks``:
    the same page, byte for byte (its salt and id derive from them), so a study can be
    regenerated. Returns the path of the page.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise DataError(out, "output already exists; choose another --out or pass --overwrite")
    real, synthetic = load_dataset(real_dir), load_dataset(synthetic_dir)
    slices, real_split = draw_slices(real, synthetic, n, seed, real_dir, synthetic_dir)

    pictures = [(slice_png(s.image), slice_png(s.image, s.mask) if masks else None)
                for s in slices]
    # The salt is a digest of everything on the page and of the truth: public, and
    # unguessable without the datasets; two different pages get two different ids.
    digest = hashlib.sha256(f"mrigan-turing|{n}|{seed}|{masks}".encode())
    for s, (plain, overlay) in zip(slices, pictures):
        digest.update(f"|{s.id}|{s.truth}|".encode())
        digest.update(plain + (overlay or b""))
    salt = digest.hexdigest()[:32]
    hashes = [answer_hash(salt, s.id, s.truth) for s in slices]
    page_id = hashlib.sha256((salt + "".join(hashes)).encode()).hexdigest()[:16]

    page = {
        "format": "mrigan-turing-page/1", "page_id": page_id, "salt": salt,
        "answers_format": ANSWERS_FORMAT, "masks": masks,
        "slices": [{"id": s.id, "image": data_uri(plain),
                    "overlay": data_uri(overlay) if overlay else None, "hash": h}
                   for s, (plain, overlay), h in zip(slices, pictures, hashes)],
    }
    key = {
        "format": KEY_FORMAT, "page_id": page_id, "salt": salt, "n": n, "seed": seed,
        "masks": masks, "package_version": __version__,
        "real": {"path": os.fspath(real_dir), "split": real_split,
                 "source": real.meta.get("source")},
        "synthetic": {"path": os.fspath(synthetic_dir), "source": synthetic.meta.get("source")},
        "slices": [{"id": s.id, "truth": s.truth, "index": s.index, "subject": s.subject,
                    "label": s.label} for s in slices],
    }
    with atomic_directory(out, overwrite=overwrite) as tmp:
        (tmp / PAGE_FILE).write_text(render_page(page, n), encoding="utf-8")
        (tmp / KEY_FILE).write_text(json.dumps(key, indent=2) + "\n")
        (tmp / README_FILE).write_text(
            f"Visual Turing test, page {page_id}: {n} slices ({n // 2} real, {n - n // 2} "
            f"synthetic).\n\nSend {PAGE_FILE} to the readers (it works offline, opened from a "
            f"file); keep {KEY_FILE}: it is the answer key.\nScore the downloaded answers with\n"
            f"  mrigan-tf turing --score answers/*.json --key {KEY_FILE}\n")
    return out / PAGE_FILE


def render_page(page: dict[str, Any], n: int) -> str:
    """The HTML page: the template with the page's data as inline JSON."""
    # "<" escaped so that no string in the data can close the <script> element.
    data = json.dumps(page, separators=(",", ":")).replace("<", "\\u003c")
    return (PAGE_TEMPLATE.replace("__PAGE_ID__", page["page_id"]).replace("__N__", str(n))
            .replace("__DATA__", data))


# ## Scoring readers

def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of an (N subjects, k categories) table of rating counts.

    Row i holds how many of the n raters put subject i in each category; every row sums to
    the same n >= 2. kappa = (P_bar - P_e) / (1 - P_e), P_bar the mean agreement per subject,
    P_e the agreement expected by chance from the category shares (Fleiss, 1971). ``nan``
    when P_e is 1 (every rating in one category: agreement is then undefined).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] < 1 or np.any(counts < 0):
        raise ValueError(f"counts must be a non-negative (subjects, categories) table, "
                         f"got shape {counts.shape}")
    raters = counts.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError(f"every subject needs the same number (>= 2) of ratings, got "
                         f"{sorted(set(raters.tolist()))}")
    n = raters[0]
    p_subject = (np.sum(counts ** 2, axis=1) - n) / (n * (n - 1))
    p_category = counts.sum(axis=0) / counts.sum()
    p_bar, p_e = p_subject.mean(), np.sum(p_category ** 2)
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def reader_scores(truths: Sequence[str], answers: Sequence[str]) -> dict[str, Any]:
    """Accuracy (95% CI), sensitivity, specificity and the binomial test of paired lists."""
    truth, answer = np.asarray(truths), np.asarray(answers)
    correct = int(np.sum(truth == answer))
    total = int(truth.size)
    synthetic, real = int(np.sum(truth == SYNTHETIC)), int(np.sum(truth == REAL))
    tp = int(np.sum((truth == SYNTHETIC) & (answer == SYNTHETIC)))
    tn = int(np.sum((truth == REAL) & (answer == REAL)))
    test = stats.binomtest(correct, total, p=0.5, alternative="two-sided")
    ci = test.proportion_ci(confidence_level=0.95, method="exact")
    return {"answered": total, "correct": correct, "accuracy": correct / total,
            "accuracy_ci95": [float(ci.low), float(ci.high)],
            "sensitivity": _rate(tp, synthetic), "synthetic_called_synthetic": tp,
            "synthetic": synthetic,
            "specificity": _rate(tn, real), "real_called_real": tn, "real": real,
            "p_value": float(test.pvalue)}


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DataError(path, f"{what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"{what} is not valid JSON ({exc})") from None


def load_key(key_file: str | os.PathLike) -> dict[str, Any]:
    path = Path(key_file)
    key = _read_json(path, "answer key")
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT:
        raise DataError(path, f"not a Turing-test answer key (expected \"format\": "
                              f"\"{KEY_FORMAT}\"); use the {KEY_FILE} written next to the page")
    slices = key.get("slices")
    if (not isinstance(slices, list) or not slices
            or not all(isinstance(s, dict) and s.get("truth") in ANSWERS and "id" in s
                       for s in slices)):
        raise DataError(path, "the key's slices must be a list of {id, truth: real|synthetic}")
    return key


def load_answers(answer_file: str | os.PathLike, key: dict[str, Any],
                 key_file: str | os.PathLike) -> dict[str, Any]:
    """One reader's answers file, checked against the key (same page, known slices)."""
    path = Path(answer_file)
    data = _read_json(path, "answers file")
    if not isinstance(data, dict) or data.get("format") != ANSWERS_FORMAT:
        raise DataError(path, f"not a Turing-test answers file (expected \"format\": "
                              f"\"{ANSWERS_FORMAT}\"); use the JSON the page downloads")
    if data.get("page_id") != key["page_id"]:
        raise DataError(path, f"answers for another page (page {data.get('page_id')!r}); "
                              f"{key_file} is the key of page {key['page_id']!r}")
    answers = data.get("answers")
    if not isinstance(answers, dict):
        raise DataError(path, "\"answers\" must map slice ids to real or synthetic")
    ids = {s["id"] for s in key["slices"]}
    unknown = sorted(set(answers) - ids)
    if unknown:
        raise DataError(path, f"slice ids not on page {key['page_id']}: "
                              f"{', '.join(map(str, unknown[:5]))}")
    bad = sorted(k for k, v in answers.items() if v not in ANSWERS)
    if bad:
        raise DataError(path, f"answers must be \"real\" or \"synthetic\"; slice {bad[0]} has "
                              f"{answers[bad[0]]!r}")
    if not answers:
        raise DataError(path, "holds no answers")
    reader = data.get("reader")
    return {"reader": reader.strip() if isinstance(reader, str) and reader.strip() else None,
            "file": os.fspath(path), "timestamp": data.get("timestamp"), "answers": answers}


def score_turing_answers(answer_files: Sequence[str | os.PathLike], key_file: str | os.PathLike,
                         out: str | os.PathLike | None = None,
                         overwrite: bool = False) -> dict[str, Any]:
    """Score each reader's answers file against ``key.json``; pool them; Fleiss' kappa.

    With ``out``, also write the report there as JSON (atomically; an existing file is
    replaced only with ``overwrite``).
    """
    if not answer_files:
        raise MriganError("no answers files given (the JSON files readers download from the page)")
    if out is not None and Path(out).exists() and not overwrite:
        raise DataError(out, "output already exists; choose another --out or pass --overwrite")
    key = load_key(key_file)
    truth = {s["id"]: s["truth"] for s in key["slices"]}
    order = [s["id"] for s in key["slices"]]
    readers = [load_answers(f, key, key_file) for f in answer_files]

    names: dict[str, int] = {}
    for r in readers:
        name = r["reader"] or Path(r["file"]).stem
        names[name] = names.get(name, 0) + 1
        r["name"] = name if names[name] == 1 else f"{name} ({Path(r['file']).name})"

    rows, pooled_truths, pooled_answers = [], [], []
    for r in readers:
        ids = [i for i in order if i in r["answers"]]
        truths, answers = [truth[i] for i in ids], [r["answers"][i] for i in ids]
        rows.append({"reader": r["name"], "file": r["file"], "timestamp": r["timestamp"],
                     **reader_scores(truths, answers)})
        pooled_truths += truths
        pooled_answers += answers

    common = [i for i in order if all(i in r["answers"] for r in readers)]
    kappa = None
    if len(readers) >= 2 and common:
        counts = np.array([[sum(r["answers"][i] == a for r in readers) for a in ANSWERS]
                           for i in common])
        value = fleiss_kappa(counts)
        kappa = None if np.isnan(value) else value
    report = {
        "page_id": key["page_id"], "slices": len(order),
        "real": sum(t == REAL for t in truth.values()),
        "synthetic": sum(t == SYNTHETIC for t in truth.values()),
        "readers": rows,
        "pooled": {"readers": len(readers), **reader_scores(pooled_truths, pooled_answers)},
        "fleiss_kappa": kappa, "kappa_slices": len(common) if len(readers) >= 2 else 0,
        "notes": ("sensitivity: synthetic slices called synthetic; specificity: real slices "
                  "called real; p_value: two-sided binomial test of the accuracy against 0.5 "
                  "(pooled: judgments of one slice by several readers are not independent); "
                  "fleiss_kappa: agreement among readers on the slices all of them answered"),
    }
    if out is not None:
        with atomic_file(out) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_turing_table(report: dict[str, Any]) -> str:
    """A short text table of a ``score_turing_answers`` report."""
    def pct(value: float | None) -> str:
        return "   -" if value is None else f"{100 * value:4.0f}%"

    rows = [(r["reader"], r) for r in report["readers"]] + [("pooled", report["pooled"])]
    width = max(6, *(len(name) for name, _ in rows))
    lines = [f"page {report['page_id']}: {report['slices']} slices ({report['real']} real, "
             f"{report['synthetic']} synthetic); chance is 50%",
             f"{'reader':<{width}}  answered  accuracy (95% CI)  sensitivity  specificity  "
             "p (binomial)"]
    for name, r in rows:
        lo, hi = r["accuracy_ci95"]
        lines.append(f"{name:<{width}}  {r['answered']:>8}  {pct(r['accuracy'])} "
                     f"({100 * lo:3.0f}-{100 * hi:3.0f}%)  {pct(r['sensitivity']):>11}  "
                     f"{pct(r['specificity']):>11}  {r['p_value']:12.3g}")
    if report["fleiss_kappa"] is not None:
        lines.append(f"Fleiss' kappa across {len(report['readers'])} readers "
                     f"({report['kappa_slices']} slices): {report['fleiss_kappa']:.3f}")
    return "\n".join(lines)


# ## The page itself: inline CSS and JavaScript, no network (the CSP forbids it)

_SHA256_K = (
    "0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,"
    "0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,"
    "0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,"
    "0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,"
    "0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,"
    "0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,"
    "0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,"
    "0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2")

PAGE_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>Visual Turing test (page __PAGE_ID__)</title>
<style>
  :root { --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --muted: #667085; --accent: #2f5bd3;
          --real: #2563a8; --synthetic: #b26a00; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         background: var(--bg); color: var(--ink); }
  header { padding: 14px 22px; background: var(--ink); color: #fff; display: flex;
           flex-wrap: wrap; gap: 8px 24px; align-items: center; }
  header h1 { font-size: 19px; margin: 0; }
  header p { margin: 0; color: #c9cfdb; flex: 1 1 380px; font-size: 13.5px; }
  header label { font-size: 13.5px; }
  header input { font: inherit; padding: 4px 8px; border-radius: 5px; border: 1px solid #8891a5;
                 width: 180px; margin-left: 6px; }
  main { display: flex; flex-wrap: wrap; gap: 18px; padding: 18px 22px; align-items: flex-start; }
  .card { background: var(--card); border-radius: 10px; box-shadow: 0 1px 3px #0002;
          padding: 16px 18px; }
  #viewer { flex: 0 1 430px; }
  #counter { display: flex; justify-content: space-between; color: var(--muted);
             font-size: 13.5px; margin-bottom: 8px; }
  #counter b { color: var(--ink); font-size: 16px; }
  #frame { background: #000; border-radius: 6px; display: flex; justify-content: center;
           align-items: center; height: 360px; overflow: hidden; }
  #slice { max-width: 100%; height: 360px; object-fit: contain; image-rendering: pixelated; }
  #choice { height: 22px; margin: 8px 0 2px; text-align: center; color: var(--muted);
            font-size: 13.5px; }
  .row { display: flex; gap: 8px; margin-top: 8px; }
  button { font: inherit; border: 1px solid #c5cad6; background: #fff; color: var(--ink);
           border-radius: 7px; padding: 8px 12px; cursor: pointer; }
  button:hover:not(:disabled) { border-color: var(--accent); }
  button:disabled { opacity: .45; cursor: default; }
  button.answer { flex: 1; font-size: 17px; font-weight: 600; padding: 11px; }
  #btn-real.chosen { background: var(--real); border-color: var(--real); color: #fff; }
  #btn-synthetic.chosen { background: var(--synthetic); border-color: var(--synthetic);
                          color: #fff; }
  button.pressed { background: #e8edfb; border-color: var(--accent); }
  kbd { font: 11px ui-monospace, monospace; border: 1px solid currentColor; border-radius: 3px;
        padding: 0 4px; margin-left: 6px; opacity: .7; }
  #progress { height: 8px; background: #e3e6ec; border-radius: 4px; margin-top: 14px;
              overflow: hidden; }
  #progress-bar { height: 100%; width: 0; background: var(--accent); transition: width .15s; }
  #progress-text { font-size: 13px; color: var(--muted); margin-top: 4px; }
  #finish { width: 100%; margin-top: 10px; background: var(--accent); color: #fff;
            border-color: var(--accent); font-weight: 600; }
  #result { margin-top: 14px; border-top: 1px solid #e3e6ec; padding-top: 12px; }
  #result h2 { font-size: 16px; margin: 0 0 8px; }
  .scores { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; }
  .score { background: var(--bg); border-radius: 8px; padding: 8px; text-align: center; }
  .score .value { font-size: 24px; font-weight: 700; display: block; }
  .score .what { font-size: 12px; color: var(--muted); }
  #result p { font-size: 13px; color: var(--muted); margin: 8px 0 0; }
  #download { margin-top: 14px; }
  #status { font-size: 12.5px; color: var(--muted); min-height: 18px; margin-top: 6px; }
  aside { flex: 1 1 360px; }
  aside h2 { font-size: 15px; margin: 0 0 10px; }
  #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(64px, 1fr)); gap: 6px; }
  .thumb { position: relative; border: 2px solid transparent; border-radius: 5px; padding: 0;
           background: #000; aspect-ratio: 1; overflow: hidden; }
  .thumb img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated;
               display: block; }
  .thumb.current { border-color: var(--accent); }
  .thumb .badge { position: absolute; right: 2px; bottom: 2px; font-size: 10.5px;
                  font-weight: 700; color: #fff; border-radius: 3px; padding: 0 4px; }
  .thumb .badge.real { background: var(--real); }
  .thumb .badge.synthetic { background: var(--synthetic); }
  .thumb .num { position: absolute; left: 3px; top: 1px; font-size: 10px; color: #fffb; }
  .help { font-size: 12.5px; color: var(--muted); margin-top: 10px; }
</style>
</head>
<body>
<header>
  <h1>Real or synthetic?</h1>
  <p>__N__ brain MRI slices, some from real scans, some made by a generative model. Label each
     one; there is no time limit. Your score appears when every slice is labelled.</p>
  <label>Reader <input id="reader" type="text" autocomplete="name" placeholder="your name"></label>
</header>
<main>
  <section id="viewer" class="card">
    <div id="counter"><span><b id="position">Slice 1</b> of __N__</span>
      <span id="slice-id"></span></div>
    <div id="frame"><img id="slice" alt="MRI slice"></div>
    <div id="choice"></div>
    <div class="row">
      <button id="btn-real" class="answer" type="button">Real<kbd>R</kbd></button>
      <button id="btn-synthetic" class="answer" type="button">Synthetic<kbd>S</kbd></button>
    </div>
    <div class="row">
      <button id="prev" type="button">&larr; Previous</button>
      <button id="next" type="button">Next &rarr;</button>
      <button id="toggle-masks" type="button" hidden>Tumor mask: off<kbd>M</kbd></button>
    </div>
    <div id="progress"><div id="progress-bar"></div></div>
    <div id="progress-text"></div>
    <button id="finish" type="button" disabled>Finish and score</button>
    <div class="help">Keys: <kbd>R</kbd> real, <kbd>S</kbd> synthetic, <kbd>&larr;</kbd>
      <kbd>&rarr;</kbd> move<span id="mask-help" hidden>, <kbd>M</kbd> tumor mask
      on/off</span>. Answers can be changed until you finish.</div>
  </section>
  <aside class="card">
    <h2>All slices</h2>
    <div id="grid"></div>
    <section id="result" hidden>
      <h2>Your score</h2>
      <div class="scores">
        <div class="score"><span class="value" id="score-accuracy"></span>
          <span class="what">accuracy</span></div>
        <div class="score"><span class="value" id="score-sensitivity"></span>
          <span class="what">synthetic called synthetic (sensitivity)</span></div>
        <div class="score"><span class="value" id="score-specificity"></span>
          <span class="what">real called real (specificity)</span></div>
      </div>
      <p id="score-note"></p>
    </section>
    <button id="download" type="button">Download my answers (JSON)</button>
    <div id="status"></div>
  </aside>
</main>
<script type="application/json" id="turing-data">__DATA__</script>
<script>
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("turing-data").textContent);
  const slices = DATA.slices;
  const N = slices.length;
  const answers = new Array(N).fill(null);
  const responseMs = new Array(N).fill(null);
  const startedAt = new Date().toISOString();
  let current = 0, showMasks = false, finished = false, shownAt = performance.now();
  let score = null;
  const $ = (id) => document.getElementById(id);

  // SHA-256 in plain JavaScript, for browsers that offer no SubtleCrypto here (it needs a
  // secure context; Chromium counts file:// as one, not every browser does).
  const K = new Uint32Array([""" + _SHA256_K + r"""]);
  function sha256Fallback(text) {
    const bytes = new TextEncoder().encode(text);
    const len = bytes.length, blocks = (len + 9 + 63) >> 6;
    const words = new Uint32Array(blocks * 16);
    for (let i = 0; i < len; i++) words[i >> 2] |= bytes[i] << (24 - (i & 3) * 8);
    words[len >> 2] |= 0x80 << (24 - (len & 3) * 8);
    words[blocks * 16 - 2] = Math.floor(len / 0x20000000);
    words[blocks * 16 - 1] = (len * 8) >>> 0;
    const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const W = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let b = 0; b < blocks; b++) {
      for (let t = 0; t < 16; t++) W[t] = words[b * 16 + t];
      for (let t = 16; t < 64; t++) {
        const s0 = rotr(W[t - 15], 7) ^ rotr(W[t - 15], 18) ^ (W[t - 15] >>> 3);
        const s1 = rotr(W[t - 2], 17) ^ rotr(W[t - 2], 19) ^ (W[t - 2] >>> 10);
        W[t] = (W[t - 16] + s0 + W[t - 7] + s1) >>> 0;
      }
      let a = H[0], c1 = H[1], c2 = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (let t = 0; t < 64; t++) {
        const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g))
                    + K[t] + W[t]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22))
                    + ((a & c1) ^ (a & c2) ^ (c1 & c2))) >>> 0;
        h = g; g = f; f = e; e = (d + t1) >>> 0; d = c2; c2 = c1; c1 = a; a = (t1 + t2) >>> 0;
      }
      H[0] += a; H[1] += c1; H[2] += c2; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }
    return Array.from(H, (x) => x.toString(16).padStart(8, "0")).join("");
  }
  async function sha256Subtle(text) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, "0")).join("");
  }
  const haveSubtle = window.isSecureContext && !!(window.crypto && crypto.subtle);
  const sha256 = haveSubtle ? sha256Subtle : async (text) => sha256Fallback(text);

  // The thumbnails: click one to go to it; its badge shows the answer given, never the truth.
  const thumbs = slices.map((s, i) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "thumb"; b.title = s.id;
    b.innerHTML = '<img alt=""><span class="num"></span><span class="badge"></span>';
    b.querySelector("img").src = s.image;
    b.querySelector(".num").textContent = String(i + 1);
    b.addEventListener("click", () => show(i));
    $("grid").appendChild(b);
    return b;
  });
  if (DATA.masks) { $("toggle-masks").hidden = false; $("mask-help").hidden = false; }

  function render() {
    const s = slices[current];
    $("slice").src = showMasks && s.overlay ? s.overlay : s.image;
    $("position").textContent = "Slice " + (current + 1);
    $("slice-id").textContent = s.id;
    const a = answers[current];
    $("choice").textContent = a ? "your answer: " + a : "not answered yet";
    $("btn-real").classList.toggle("chosen", a === "real");
    $("btn-synthetic").classList.toggle("chosen", a === "synthetic");
    for (const id of ["btn-real", "btn-synthetic"]) $(id).disabled = finished;
    $("prev").disabled = current === 0;
    $("next").disabled = current === N - 1;
    $("toggle-masks").textContent = "Tumor mask: " + (showMasks ? "on" : "off");
    $("toggle-masks").classList.toggle("pressed", showMasks);
    const done = answers.filter((x) => x !== null).length;
    $("progress-bar").style.width = (100 * done / N) + "%";
    $("progress-text").textContent = done + " of " + N + " answered" +
      (finished ? " (scored; answers are locked)" : done === N ? ": ready to score" : "");
    $("finish").disabled = finished || done < N;
    $("finish").hidden = finished;
    thumbs.forEach((t, i) => {
      t.classList.toggle("current", i === current);
      const badge = t.querySelector(".badge");
      badge.className = "badge" + (answers[i] ? " " + answers[i] : "");
      badge.textContent = answers[i] ? answers[i][0].toUpperCase() : "";
    });
  }

  function show(i) {
    current = Math.max(0, Math.min(N - 1, i));
    shownAt = performance.now();
    render();
  }

  function answer(kind) {
    if (finished) return;
    answers[current] = kind;
    responseMs[current] = Math.round(performance.now() - shownAt);
    // On to the next unanswered slice, if any.
    for (let step = 1; step <= N; step++) {
      const j = (current + step) % N;
      if (answers[j] === null) { show(j); return; }
    }
    render();
  }

  function percent(part, whole) {
    return whole ? (100 * part / whole).toFixed(0) + "%" : "-";
  }
  function setScore(id, part, whole) {
    const el = $(id);
    el.textContent = percent(part, whole);
    el.dataset.part = part; el.dataset.whole = whole;
    el.title = part + " of " + whole;
  }

  async function finish() {
    if (finished || answers.includes(null)) return;
    // An answer is right when its salted hash is the one stored for the slice.
    const right = await Promise.all(slices.map(async (s, i) =>
      (await sha256(DATA.salt + ":" + s.id + ":" + answers[i])) === s.hash));
    let correct = 0, synthetic = 0, tp = 0, real = 0, tn = 0;
    right.forEach((ok, i) => {
      const truth = ok ? answers[i] : (answers[i] === "real" ? "synthetic" : "real");
      if (ok) correct++;
      if (truth === "synthetic") { synthetic++; if (ok) tp++; } else { real++; if (ok) tn++; }
    });
    finished = true;
    score = { correct, total: N, synthetic_called_synthetic: tp, synthetic,
              real_called_real: tn, real };
    setScore("score-accuracy", correct, N);
    setScore("score-sensitivity", tp, synthetic);
    setScore("score-specificity", tn, real);
    $("score-note").textContent = correct + " of " + N + " right (" + tp + " of " + synthetic +
      " synthetic, " + tn + " of " + real + " real). Chance is 50%. Download your answers and " +
      "send the file to the person who ran the test.";
    $("result").hidden = false;
    render();
  }

  function answersJSON() {
    const byId = {}, ms = {};
    slices.forEach((s, i) => {
      if (answers[i] !== null) { byId[s.id] = answers[i]; ms[s.id] = responseMs[i]; }
    });
    return { format: DATA.answers_format, page_id: DATA.page_id,
             reader: $("reader").value.trim(), started: startedAt,
             timestamp: new Date().toISOString(), finished: finished,
             slices: slices.map((s) => s.id), answers: byId, response_ms: ms };
  }

  function download() {
    const data = answersJSON();
    const name = (data.reader || "reader").replace(/[^A-Za-z0-9_-]+/g, "_");
    const blob = new Blob([JSON.stringify(data, null, 2) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "turing-answers-" + name + "-" + DATA.page_id + ".json";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 5000);
    const done = Object.keys(data.answers).length;
    $("status").textContent = "saved " + a.download + " (" + done + " of " + N + " answers" +
      (data.reader ? "" : "; tip: type your name above") + ")";
  }

  $("btn-real").addEventListener("click", () => answer("real"));
  $("btn-synthetic").addEventListener("click", () => answer("synthetic"));
  $("prev").addEventListener("click", () => show(current - 1));
  $("next").addEventListener("click", () => show(current + 1));
  $("toggle-masks").addEventListener("click", () => { showMasks = !showMasks; render(); });
  $("finish").addEventListener("click", finish);
  $("download").addEventListener("click", download);
  document.addEventListener("keydown", (ev) => {
    // Typing a name must not answer slices.
    if (ev.target instanceof HTMLInputElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (key === "r") answer("real");
    else if (key === "s") answer("synthetic");
    else if (key === "ArrowLeft") show(current - 1);
    else if (key === "ArrowRight") show(current + 1);
    else if (key === "m" && DATA.masks) { showMasks = !showMasks; render(); }
    else return;
    ev.preventDefault();
  });

  // For whoever drives the page from a script (the tests): the answers and the score.
  window.turingAnswers = answersJSON;
  window.turingScore = () => score;
  window.turingSha256 = { fallback: sha256Fallback, subtle: haveSubtle ? sha256Subtle : null };
  show(0);
})();
</script>
</body>
</html>
"""
