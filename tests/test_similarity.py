"""``python -m autograder similarity``: the class of tests/corpus/similarity/ is scored as expected.

The class (``tests/corpus/similarity/class/<student>/<module>.py``: function bodies only, put
into the release's stub here as a student fills it in):
- alice, bob, carol, frank: independently written correct ``rnn_layers`` in different styles
  (loops over step functions, einsum with dict caches, np.dot with a while loop, vectorised);
  frank writes the canonical one-liners exactly as alice does;
- dave: alice's ``rnn_layers`` with renamed variables and reordered statements (the sharing
  pair), and his own ``lstm_layers``; alice and bob wrote theirs too (three honest LSTMs);
- erin: a lightly edited copy of ``known/cs231n_public/rnn_layers.py`` (the ``--corpus``).
Submissions arrive as a folder (alice, bob, frank), a zip (carol) and an nbgrader ``submitted/``
tree (dave, erin).
"""
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autograder import cli, course, paths, similarity
from seqlab_dev.similarity_class import CORPUS, STUDENTS, fill_stub, modules_of, student_module
from seqlab_dev.testing import require_e2e

ROOT = Path(__file__).resolve().parent.parent
FLAGGED = {("alice", "dave"), ("erin", "cs231n_public")}
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def class_args(tmp_path_factory):
    """Command-line arguments naming the six submissions, in three shapes."""
    base = tmp_path_factory.mktemp("class")
    args = []
    for name in ("alice", "bob", "frank"):
        pkg = base / name / "seqlab"
        pkg.mkdir(parents=True)
        for mod in modules_of(name):
            (pkg / f"{mod}.py").write_text(student_module(name, mod))
        args.append(str(base / name))
    with zipfile.ZipFile(base / "carol.zip", "w") as zf:
        for mod in modules_of("carol"):
            zf.writestr(f"sequence_models/seqlab/{mod}.py", student_module("carol", mod))
    args.append(str(base / "carol.zip"))
    for name in ("dave", "erin"):
        pkg = base / "course" / "submitted" / name / course.ASSIGNMENT / "seqlab"
        pkg.mkdir(parents=True)
        for mod in modules_of(name):
            (pkg / f"{mod}.py").write_text(student_module(name, mod))
    args.append(str(base / "course" / "submitted"))
    return args


@pytest.fixture(scope="module")
def class_run(class_args, tmp_path_factory):
    """Run the command once on the class: -> (exit status, JSON dict, report path)."""
    out = tmp_path_factory.mktemp("report")
    status = cli.main(["similarity", *class_args, "--corpus", str(CORPUS / "known"),
                       "--out", str(out / "report.html"), "--json", str(out / "scores.json"),
                       "--quiet"])
    return status, json.loads((out / "scores.json").read_text()), out / "report.html"


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lstm_outputs(m, rng):
    N, T, D, H = 3, 4, 5, 6
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H))
    b = rng.standard_normal(4 * H)
    h, c, cache = m.lstm_step_forward(x[:, 0], h0, rng.standard_normal((N, H)), Wx, Wh, b)
    out = [h, c, *m.lstm_step_backward(rng.standard_normal((N, H)),
                                       rng.standard_normal((N, H)), cache)]
    h, cache = m.lstm_forward(x, h0, Wx, Wh, b)
    return out + [h, *m.lstm_backward(rng.standard_normal((N, T, H)), cache)]


def _outputs(m, rng):
    N, T, D, H, V, M = 3, 4, 5, 6, 7, 8
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    out = []
    h, c = m.rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    out += [h, *m.rnn_step_backward(rng.standard_normal((N, H)), c)]
    h, c = m.rnn_forward(x, h0, Wx, Wh, b)
    out += [h, *m.rnn_backward(rng.standard_normal((N, T, H)), c)]
    words, W = rng.integers(0, V, (N, T)), rng.standard_normal((V, D))
    e, c = m.word_embedding_forward(words, W)
    out += [e, m.word_embedding_backward(rng.standard_normal((N, T, D)), c)]
    w, bm = rng.standard_normal((D, M)), rng.standard_normal(M)
    a, c = m.temporal_affine_forward(x, w, bm)
    out += [a, *m.temporal_affine_backward(rng.standard_normal((N, T, M)), c)]
    scores, y, mask = rng.standard_normal((N, T, V)), rng.integers(0, V, (N, T)), \
        rng.random((N, T)) > 0.3
    out += list(m.temporal_softmax_loss(scores, y, mask))
    return out


def test_the_class_is_correct_code(tmp_path):
    """Every implementation of the class (and the corpus file) agrees with the reference
    solution on every function, so the honest students are honest *correct* work. These are
    the test's own files, imported here; the similarity command never imports anything."""
    from seqlab import lstm_layers, rnn_layers
    runs = {"rnn_layers": (rnn_layers, _outputs), "lstm_layers": (lstm_layers, _lstm_outputs)}
    files = [(name, mod, student_module(name, mod)) for name in STUDENTS
             for mod in modules_of(name)]
    files.append(("cs231n_public", "rnn_layers",
                  (CORPUS / "known" / "cs231n_public" / "rnn_layers.py").read_text()))
    assert len(files) == 10
    for name, mod, code in files:
        ref, run = runs[mod]
        expected = run(ref, np.random.default_rng(0))
        path = tmp_path / f"{name}_{mod}.py"
        path.write_text(code)
        got = run(_load(path, f"similarity_class_{name}_{mod}"), np.random.default_rng(0))
        assert len(got) == len(expected)
        for i, (g, e) in enumerate(zip(got, expected)):
            np.testing.assert_allclose(g, e, rtol=1e-7, atol=1e-9,
                                       err_msg=f"{name} {mod}: output {i} differs")


def test_the_sharing_pair_and_the_copier_are_flagged_and_no_honest_pair(class_run, report):
    status, data, _ = class_run
    assert status == 0
    assert data["submissions"] == sorted(STUDENTS)
    assert data["corpus"] == ["cs231n_public"]
    pairs = {(p["a"], p["b"]): p for p in data["pairs"]}
    assert len(pairs) == 15 + 6  # every pair of six students, and each against the corpus
    for (a, b), p in sorted(pairs.items()):
        for mod, m in p["modules"].items():
            report(f"similarity {a} ~ {b} {mod}: {m['score']:.3f} (a {m['score_a']:.3f}, "
                   f"b {m['score_b']:.3f}, {m['matched_chars']} chars)"
                   + ("  FLAGGED" if mod in p["flagged"] else ""))
    assert {k for k, p in pairs.items() if p["flagged"]} == FLAGGED
    for key in FLAGGED:
        assert pairs[key]["flagged"] == ["rnn_layers"]
        assert pairs[key]["modules"]["rnn_layers"]["score"] >= 0.7
    # per module: dave shared alice's rnn_layers, not his LSTM; the three LSTMs are honest
    assert sorted(pairs[("alice", "dave")]["modules"]) == ["lstm_layers", "rnn_layers"]
    lstm = [p["modules"]["lstm_layers"]["score"] for k, p in pairs.items()
            if p["kind"] == "class" and "lstm_layers" in p["modules"]]
    assert len(lstm) == 3 and max(lstm) < 0.35
    honest = [m["score"] for k, p in pairs.items() for mod, m in p["modules"].items()
              if not (k in FLAGGED and mod == "rnn_layers")]
    assert max(honest) < 0.35  # a clear gap below the 0.5 threshold
    # frank wrote the canonical one-liners exactly as alice: they do match, and do not flag
    canon = pairs[("alice", "frank")]["modules"]["rnn_layers"]
    assert canon["matched_chars"] > 0 and canon["score"] < 0.2
    # the flagged rows come first in the ranking
    assert {(p["a"], p["b"]) for p in data["pairs"][:2]} == FLAGGED


def test_compare_gives_copydetects_numbers(class_args):
    """similarity.compare (arrays) against copydetect's own compare_files (a list per hash) on
    every pair of the class and the corpus: same scores, overlap and matched regions."""
    from copydetect.detector import compare_files
    settings = similarity.Settings()
    inputs = similarity.read_inputs(class_args, str(CORPUS / "known"))
    similarity.fingerprint_all(inputs, settings)
    docs = [d for _, s in sorted(inputs.students.items()) for _, d in sorted(s.items())]
    docs += inputs.corpus["cs231n_public"]
    checked = 0
    for i, a in enumerate(docs):
        for b in docs[i + 1:]:
            ours = similarity.compare(a, b)
            overlap, (sa, sb), (slices_a, slices_b) = compare_files(a.fp, b.fp)
            assert ours.overlap == overlap
            assert (ours.score_a, ours.score_b) == pytest.approx((sa, sb), abs=1e-12)
            if overlap:
                np.testing.assert_array_equal(ours.slices_a, slices_a)
                np.testing.assert_array_equal(ours.slices_b, slices_b)
                checked += 1
    assert checked >= 15


def test_corpus_notebooks_are_read_and_links_are_not(tmp_path, class_args):
    """A corpus source that is a notebook (the code cells count) flags the copier; a symbolic
    link in the corpus is not followed."""
    code = (CORPUS / "known" / "cs231n_public" / "rnn_layers.py").read_text()
    nb = {"cells": [{"cell_type": "markdown", "source": ["# RNN"]},
                    {"cell_type": "code", "source": code.splitlines(keepends=True)}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "repo" / "notebooks").mkdir(parents=True)
    (tmp_path / "repo" / "notebooks" / "RNN_Captioning.ipynb").write_text(json.dumps(nb))
    (tmp_path / "linked").symlink_to(CORPUS / "known" / "cs231n_public")
    erin = class_args[-1]  # the submitted/ tree of dave and erin
    inputs = similarity.read_inputs([erin], str(tmp_path))
    assert sorted(inputs.corpus) == ["repo"]
    similarity.fingerprint_all(inputs, similarity.Settings())
    pairs = {(p.a, p.b): p for p in similarity.compare_all(inputs, similarity.Settings())}
    assert pairs[("erin", "repo")].flagged == ["rnn_layers"]
    assert not pairs[("dave", "repo")].flagged


def test_the_release_text_is_not_counted():
    """A submission that is the untouched release, and two students who filled in the same
    single line, share all the docstrings: only the student-written line may count."""
    stub = (paths.release_dir() / "rnn_layers.py").read_text(encoding="utf-8")
    settings = similarity.Settings()
    boiler = similarity.Boilerplate.of(stub, settings.noise)
    assert similarity.fingerprint(stub, settings, boiler).hashes == set()
    one = fill_stub(stub, "def rnn_step_forward():\n"
                          "    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)\n")
    fp = similarity.fingerprint(one, settings, boiler)
    # the one line filters to 'V=V.V(V@V+V@V+V)', 16 characters: shorter than a k-gram
    assert similarity.filtered("next_h = np.tanh(x @ Wx + prev_h @ Wh + b)")[0] == \
        "V=V.V(V@V+V@V+V)"
    assert fp.hashes == set()


def test_renamed_variables_and_strings_do_not_hide_a_copy():
    settings = similarity.Settings(window=1)
    a = ("def f(x, w):\n    total = 0\n    for i in range(len(x)):\n"
         "        total += x[i] * w[i] + 1\n    print('done', total)\n    return total\n")
    b = ("def g(values, weights):\n    acc = 0\n    for k in range(len(values)):\n"
         "        acc += values[k] * weights[k] + 1\n    print(\"finished\", acc)\n"
         "    return acc\n")
    da = similarity.Document("a", "m", "a.py", a, similarity.fingerprint(a, settings))
    db = similarity.Document("b", "m", "b.py", b, similarity.fingerprint(b, settings))
    match = similarity.compare(da, db)
    assert match.score_a == pytest.approx(1.0) and match.score_b == pytest.approx(1.0)
    c = "def h(n):\n    while n > 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n"
    dc = similarity.Document("c", "m", "c.py", c, similarity.fingerprint(c, settings))
    assert similarity.compare(da, dc).score_a == 0.0


def test_common_code_is_dropped_only_when_asked():
    """--common F: fingerprints in more than a fraction F of the class count as boilerplate."""
    shared = "def f(a, b):\n    total = a * b + (a - b) ** 2\n    return [total, total * 2, a]\n"
    own = ["def g(n):\n    while n > 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n",
           "def h(s):\n    return {c: s.count(c) for c in set(s) if c.isalpha()}\n",
           "def k(xs):\n    try:\n        return max(xs) - min(xs)\n    except ValueError:\n"
           "        return None\n"]
    codes = [shared + own[0], shared + own[1], shared + own[2], own[1]]

    def scores(settings):
        inputs = similarity.Inputs()
        for i, code in enumerate(codes):
            inputs.students[f"s{i}"] = {"rnn_layers": similarity.Document(
                f"s{i}", "rnn_layers", "rnn_layers.py", code)}
        similarity.fingerprint_all(inputs, settings)
        return {(p.a, p.b): p.score for p in similarity.compare_all(inputs, settings)}

    kept = scores(similarity.Settings(window=1))
    assert kept[("s0", "s1")] > 0.3 and kept[("s0", "s2")] > 0.3
    dropped = scores(similarity.Settings(window=1, common=0.5, min_common=4))
    assert dropped[("s0", "s1")] == 0.0 and dropped[("s0", "s2")] == 0.0
    assert dropped[("s1", "s3")] == pytest.approx(kept[("s1", "s3")]) == 1.0  # in 2 of 4
    too_few = scores(similarity.Settings(window=1, common=0.5, min_common=5))
    assert too_few == kept


def _naive_hash(text, k):
    """An independent pure-Python version of similarity.kgram_hashes."""
    mask = 2 ** 64 - 1
    out = []
    for i in range(len(text) - k + 1):
        h = 0
        for ch in text[i:i + k]:
            h = (h * 0x100000001B3 + ord(ch)) & mask
        h ^= h >> 30
        h = (h * 0xBF58476D1CE4E5B9) & mask
        h ^= h >> 27
        h = (h * 0x94D049BB133111EB) & mask
        h ^= h >> 31
        out.append(h - 2 ** 64 if h >= 2 ** 63 else h)
    return out


def test_kgram_hash_matches_an_independent_implementation():
    text = "V=V.V(V@V+V@V+V)V=(V,V,V,V,V)é€"
    assert similarity.kgram_hashes(text, 7).tolist() == _naive_hash(text, 7)
    assert similarity.kgram_hashes("abc", 5).shape == (0,)


def test_same_bytes_on_every_run_whatever_the_hash_seed(class_args, tmp_path):
    """copydetect hashes with Python's hash(), which changes with PYTHONHASHSEED; ours does not:
    two runs with different seeds, one in a single process and one with two worker processes,
    write byte-identical JSON and HTML."""
    outputs = []
    for seed, jobs in (("1", "1"), ("2", "2")):
        out = tmp_path / seed
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run(
            [sys.executable, "-m", "autograder", "similarity", *class_args, "--corpus",
             str(CORPUS / "known"), "--out", str(out / "r.html"), "--json",
             str(out / "r.json"), "--quiet", "--jobs", jobs],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "FLAGGED alice ~ dave" in proc.stdout
        outputs.append(((out / "r.json").read_bytes(), (out / "r.html").read_bytes()))
    assert outputs[0] == outputs[1]


def test_student_code_is_shown_escaped_and_never_run(tmp_path):
    """A hostile submission: module code that would write a file if imported or run, and code
    and a folder name that would inject script into the report if not escaped."""
    marker = tmp_path / "PWNED"
    evil = ("import os\nopen(%r, 'w').write('ran')\nos.system('touch %s')\n"
            "X = '</pre><script>alert(1)</script>'\n" % (str(marker), marker)) * 3
    for name in ("<img src=x onerror=alert(1)>", "twin"):
        pkg = tmp_path / name / "seqlab"
        pkg.mkdir(parents=True)
        (pkg / "rnn_layers.py").write_text(evil)
    out = tmp_path / "r.html"
    status = cli.main(["similarity", str(tmp_path / "<img src=x onerror=alert(1)>"),
                              str(tmp_path / "twin"), "--out", str(out), "--quiet",
                              "--min-match", "0"])
    assert status == 0
    assert not marker.exists()
    html = out.read_text()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_bad_arguments_are_named(tmp_path, capsys):
    assert cli.main(["similarity", str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert cli.main(["similarity", str(tmp_path), str(tmp_path), "--threshold", "0"]) == 2
    assert "threshold: expected a number in (0, 1], got 0.0" in capsys.readouterr().err
    assert cli.main(["similarity", str(tmp_path)]) == 2
    assert "at least two submissions" in capsys.readouterr().err


@pytest.mark.e2e
def test_the_report_opens_in_a_browser_with_the_matched_regions(class_run):
    """Headless chromium renders the report from disk: the ranked table lists the two flagged
    pairs first, and alice ~ dave shows the shared embedding gradient marked on both sides."""
    if not os.path.exists(CHROMIUM):
        require_e2e(f"no {CHROMIUM} (.ci/run installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_e2e("playwright is not installed (requirements-dev.txt)")
    _, data, report_path = class_run
    rank = 1 + next(i for i, p in enumerate(data["pairs"]) if (p["a"], p["b"]) == ("alice",
                                                                                    "dave"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--headless", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"])
        try:
            page = browser.new_page()
            page.goto(report_path.as_uri())
            assert page.title() == "seqlab similarity report"
            assert page.locator("tr.flagged").count() == 2
            section = page.locator(f"#p{rank}-rnn_layers")
            assert section.is_visible()
            sides = section.locator(".side")
            assert sides.count() == 2
            left = " ".join(sides.nth(0).locator("mark.match").all_inner_texts())
            right = " ".join(sides.nth(1).locator("mark.match").all_inner_texts())
            assert "np.add.at(dW, x, dout)" in left
            assert "np.add.at(dW, idx, dout)" in right
            assert sides.nth(0).locator("mark.match").first.is_visible()
            assert page.locator("script").count() == 0
        finally:
            browser.close()
