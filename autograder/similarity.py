"""Code similarity across a class and against known solutions (``python -m autograder similarity``).

Every student module of every submission is compared with the same module of every other
submission, and with every file of a corpus of known solutions the instructor collected (public
repositories, earlier years). Nothing is imported or run: files are read as text.

How two files are compared (winnowing, as MOSS does; the building blocks are ``copydetect``'s):

1. ``copydetect.utils.filter_code`` tokenizes a file with Pygments' Python lexer, drops
   whitespace and comments, and replaces every name by ``V`` (``F`` for a function name, ``O``
   for a class name) and every string by ``S``: renaming variables changes nothing.
2. Every run of ``noise`` consecutive characters of that filtered text (a k-gram) is hashed, and
   winnowing keeps the smallest hash of every ``window`` consecutive k-grams. Any match at least
   ``noise + window - 1`` filtered characters long is guaranteed to be found; shorter than
   ``noise`` never is.
3. What the student did not write is boilerplate: a k-gram counts only if every character of
   it lies on a line that is not a line of the release's version of the module (docstrings,
   signatures, given code, stubs), and its hash is not one of the release's k-grams. With
   ``--common F``, code that more than a fraction F of the class shares is dropped too (MOSS's
   ``-m``; off by default: it would also hide a solution most of the class copied).
4. The score of a file in a comparison is the fraction of its remaining fingerprinted code that
   lies in regions matched in the other file: what ``copydetect.detector.compare_files``
   computes, here on sorted arrays (``compare``; the tests check that the two agree).

The hash is a fixed polynomial hash (copydetect's uses Python's ``hash()``, which changes with
every process): the same submissions give the same scores and the same report on every run.
"""
import argparse
import contextlib
import json
import multiprocessing
import os
import stat
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from autograder import course, paths, submission

NOISE = 20       # shortest match that counts, in filtered characters
WINDOW = 4       # winnowing window: a match of NOISE + WINDOW - 1 = 23 characters is always found
THRESHOLD = 0.5  # a (pair, module) is flagged when its score reaches this ...
MIN_MATCH = 60   # ... and at least this many filtered characters match (a few statements)
COMMON = 1.0     # with --common F < 1: code in more than F of the class counts as boilerplate
MIN_COMMON = 10  # ... applied only when at least this many submissions have the module
CORPUS_SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class Settings:
    """Parameters of a comparison (see the module docstring; the defaults are documented in
    ``autograder/README.md`` with how they were chosen)."""
    noise: int = NOISE
    window: int = WINDOW
    threshold: float = THRESHOLD
    min_match: int = MIN_MATCH
    common: float = COMMON
    min_common: int = MIN_COMMON

    def check(self) -> None:
        """Raise ValueError naming the first parameter out of range."""
        for name, ok, expected in (("noise", self.noise >= 5, "an integer >= 5"),
                                   ("window", self.window >= 1, "an integer >= 1"),
                                   ("threshold", 0.0 < self.threshold <= 1.0, "a number in (0, 1]"),
                                   ("min_match", self.min_match >= 0, "an integer >= 0"),
                                   ("common", 0.0 < self.common <= 1.0, "a number in (0, 1]")):
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got {getattr(self, name)}")


# --------------------------------------------------------------------------- fingerprints

_MULT = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime as the polynomial base


def kgram_hashes(text: str, k: int) -> np.ndarray:
    """64-bit hashes of every k-gram (k consecutive characters) of ``text``.

    Inputs: text, a str of length L; k, an int >= 1.
    Returns an int64 array of shape (max(L - k + 1, 0),); entry i hashes text[i:i + k]. The
    hash is a polynomial over the code points followed by splitmix64's finalizer, so it is the
    same in every process (unlike Python's ``hash``) and well spread for winnowing.
    """
    data = text.encode("utf-32-le", errors="surrogatepass")
    codes = np.frombuffer(data, dtype="<u4").astype(np.uint64)
    n = codes.shape[0] - k + 1
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            h = h * _MULT + codes[j:j + n]
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h.view(np.int64)


@dataclass
class Fingerprint:
    """A file's winnowed fingerprints. ``positions`` (int array, shape (F,)) are where they
    start in ``filtered_code`` and ``position_hashes`` (int64, shape (F,)) their hashes. The
    other attributes are those ``copydetect.detector.compare_files`` reads: ``k``,
    ``filtered_code`` (str), ``offsets`` ((M, 2) int array mapping filtered positions back to
    the raw text), ``hashes`` (set of int), ``hash_idx`` ({hash: [positions]}) and
    ``token_coverage`` (filtered characters covered by a fingerprint)."""
    k: int
    raw_code: str
    filtered_code: str
    offsets: np.ndarray
    positions: np.ndarray
    position_hashes: np.ndarray
    hashes: set = field(init=False)
    hash_idx: dict = field(init=False)
    token_coverage: float = field(init=False)
    sorted_hashes: np.ndarray = field(init=False)  # unique, sorted: for fast membership

    def __post_init__(self):
        from copydetect.utils import get_token_coverage
        self.sorted_hashes = np.unique(self.position_hashes)
        self.hash_idx = {}
        for h, i in zip(self.position_hashes.tolist(), self.positions.tolist()):
            self.hash_idx.setdefault(h, []).append(i)
        self.hashes = set(self.hash_idx)
        self.token_coverage = float(get_token_coverage(self.hash_idx, self.k,
                                                       len(self.filtered_code)))

    def drop(self, unwanted: set) -> "Fingerprint":
        """A copy without the fingerprints in the set ``unwanted``."""
        if not unwanted or not (self.hashes & unwanted):
            return self
        keep = ~np.isin(self.position_hashes, np.fromiter(unwanted, dtype=np.int64))
        return Fingerprint(self.k, self.raw_code, self.filtered_code, self.offsets,
                           self.positions[keep], self.position_hashes[keep])


def filtered(code: str) -> tuple[str, np.ndarray]:
    """``code`` (str) tokenized and filtered by copydetect -> (filtered str, copydetect's
    offsets (its own mapping, the one its highlighting uses), raw positions: an int array of
    shape (len(filtered),) holding where each filtered character comes from in ``code``)."""
    from copydetect.utils import filter_code
    text, offsets = filter_code(code, "module.py", language="python")
    pos = np.arange(len(text))
    if len(offsets):
        at = np.clip(np.searchsorted(offsets[:, 0], pos), 0, offsets.shape[0] - 1)
        pos = pos + offsets[at, 1]
    return text, offsets, pos


@dataclass(frozen=True)
class Boilerplate:
    """What a student did not write: the release's version of a module. ``lines``: its stripped
    non-empty lines; ``hashes``: every k-gram hash of its filtered text (sorted int64 array)."""
    lines: frozenset
    hashes: np.ndarray

    @classmethod
    def of(cls, code: str, k: int) -> "Boilerplate":
        """The boilerplate of the release file ``code`` (str) for k-grams of length ``k``."""
        lines = frozenset(line.strip() for line in code.splitlines() if line.strip())
        return cls(lines, np.unique(kgram_hashes(filtered(code)[0], k)))

    def char_mask(self, code):
        """Boolean array of shape (len(code),): True on the characters of ``code`` that lie on
        a line that is also a line of the release file (stripped; order and place free)."""
        mask = np.zeros(len(code), dtype=bool)
        start = 0
        for line in code.splitlines(keepends=True):
            if line.strip() and line.strip() in self.lines:
                mask[start:start + len(line)] = True
            start += len(line)
        return mask


def fingerprint(code: str, settings: Settings,
                boilerplate: "Boilerplate | None" = None) -> Fingerprint:
    """Winnowed fingerprints of the Python source ``code`` (str).

    With a ``Boilerplate``, a k-gram counts only when every one of its characters comes from a
    line the student wrote (so no match can span the release's text around the student's code)
    and its hash is not one of the release's.
    """
    from copydetect.utils import winnow
    text, offsets, pos = filtered(code)
    k = settings.noise
    hashes = kgram_hashes(text, k)
    valid = np.ones(hashes.shape[0], dtype=bool)
    if boilerplate is not None and hashes.shape[0]:
        bad = boilerplate.char_mask(code)[pos].astype(np.int64)
        in_window = np.concatenate([[0], np.cumsum(bad)])
        valid = in_window[k:] - in_window[:-k] == 0
        valid &= ~np.isin(hashes, boilerplate.hashes)
    if hashes.shape[0] and settings.window > 1:
        # an excluded k-gram must never be a window's minimum: give it the largest hash
        ranked = np.where(valid, hashes, np.iinfo(np.int64).max)
        _, idx = winnow(ranked, settings.window, remove_duplicates=False)
    else:
        idx = np.arange(hashes.shape[0])
    idx = idx[valid[idx]] if idx.shape[0] else idx
    return Fingerprint(k, code, text, offsets, idx.astype(np.int64), hashes[idx])


# --------------------------------------------------------------------------- inputs

@dataclass
class Document:
    """One file taking part: ``owner`` (a submission's name, or a corpus source), ``label`` (the
    student module, or the corpus file's path inside its source), ``path`` (where it was found,
    for the report) and ``code`` (str)."""
    owner: str
    label: str
    path: str
    code: str
    fp: Fingerprint = None


@dataclass
class Inputs:
    """What was read: ``students`` {name: {module: Document}}, ``corpus`` {source: [Document]},
    and ``problems`` (readable lines: files ignored and why)."""
    students: dict = field(default_factory=dict)
    corpus: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)


def _decode(data):
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def expand(path: str | Path) -> list[tuple[str, Path]]:
    """The submissions a command-line argument stands for: [(name, path)].

    A folder or zip is one submission, named after it; an nbgrader ``submitted/`` folder (or a
    course folder holding one) stands for each ``submitted/<student>/<assignment>/`` in it,
    named after the student.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        if (path / "submitted").is_dir():
            path = path / "submitted"
        students = [d for d in sorted(path.iterdir())
                    if d.is_dir() and not d.is_symlink() and (d / course.ASSIGNMENT).is_dir()]
        if students:
            return [(d.name, d / course.ASSIGNMENT) for d in students]
    return [(path.name[:-4] if path.name.endswith(".zip") else path.name, path)]


def read_submissions(args, inputs: "Inputs") -> None:
    """Read the student modules of every submission named in ``args`` (paths) into ``inputs``.
    Only the five student modules are read, with ``submission.load`` as ``grade`` does."""
    for arg in args:
        for name, path in expand(arg):
            base, k = name, 1
            while name in inputs.students:
                k += 1
                name = f"{base}_{k}"
            sub = submission.load(path)
            inputs.problems.extend(f"{name}: {p}" for p in sub.problems)
            inputs.students[name] = {
                mod: Document(name, mod, sub.found_at[mod], _decode(sub.files[mod]))
                for mod in course.STUDENT_MODULES if mod in sub.files}


def _notebook_code(data):
    """The code cells of a notebook (bytes of its JSON), joined; None if it is not one."""
    try:
        parts = []
        for cell in json.loads(data).get("cells", []):
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                src = cell.get("source", "")
                parts.append("".join(src) if isinstance(src, list) else str(src))
    except (ValueError, AttributeError, TypeError):
        return None
    return "\n\n".join(p for p in parts if p.strip())


CORPUS_ENTRIES = 10 * submission.MAX_ENTRIES  # a corpus may hold many repositories


def read_corpus(folder, inputs: "Inputs") -> None:
    """Read the known solutions under ``folder`` into ``inputs.corpus``: every ``.py`` file and
    the code cells of every ``.ipynb``. A source is a top-level entry of the folder (one public
    repository, one earlier submission). The folder is walked as a submission is
    (``submission.walk_folder``: no symbolic links, no hidden or tool folders, a depth limit),
    with ``CORPUS_ENTRIES`` entries at most; files over ``submission.MAX_FILE`` are ignored."""
    notes = []
    files = submission.walk_folder(Path(folder), submission.Budget(notes, entries=CORPUS_ENTRIES))
    inputs.problems.extend(f"corpus: {n}" for n in notes)
    for parts, full in sorted(files.items()):
        if not parts[-1].endswith(CORPUS_SUFFIXES):
            continue
        rel = "/".join(parts)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if st.st_size > submission.MAX_FILE:
            inputs.problems.append(f"corpus: {rel}: larger than "
                                   f"{submission.MAX_FILE // 2 ** 20} MB; ignored")
            continue
        data = full.read_bytes()
        if rel.endswith(".ipynb"):
            code = _notebook_code(data)
            if code is None:
                inputs.problems.append(f"corpus: {rel}: not a notebook; ignored")
                continue
        else:
            code = _decode(data)
        source, inside = parts[0], "/".join(parts[1:]) or parts[0]
        inputs.corpus.setdefault(source, []).append(Document(source, inside, rel, code))


def read_inputs(submissions, corpus=None) -> "Inputs":
    """Read the submissions (paths of folders, zips, ``submitted/`` trees) and the corpus
    folder (or None) -> Inputs. Raises ValueError naming a path that does not exist."""
    missing = [s for s in list(submissions) + ([corpus] if corpus else [])
               if not os.path.exists(s)]
    if missing:
        raise ValueError(f"no such file or folder: {', '.join(map(str, missing))}")
    if corpus and not os.path.isdir(corpus):
        raise ValueError(f"--corpus: expected a folder, got the file {corpus}")
    inputs = Inputs()
    read_submissions(submissions, inputs)
    if corpus:
        read_corpus(corpus, inputs)
    return inputs


# --------------------------------------------------------------------------- comparing

@dataclass
class Match:
    """One comparison of two documents: ``a`` and ``b`` (Documents; for a corpus pair ``a`` is
    the student's), ``score_a``/``score_b`` (fraction of each file's fingerprinted code that
    matched), ``overlap`` (matched filtered characters in ``a``), ``slices_a``/``slices_b``
    ((2, R) int arrays: start and end of each matched region in the raw text)."""
    a: Document
    b: Document
    score_a: float
    score_b: float
    overlap: int
    slices_a: np.ndarray
    slices_b: np.ndarray


@dataclass
class Pair:
    """Two submissions, or a submission and a corpus source (``kind`` "class" or "corpus"), with
    one Match per student module they both have (``matches``: {module: Match}, the best corpus
    file for each module). ``score`` is the highest module score, ``flagged`` lists the modules
    at or over the threshold."""
    a: str
    b: str
    kind: str
    matches: dict
    score: float = 0.0
    flagged: list = field(default_factory=list)


def module_score(match: Match, kind: str) -> float:
    """The score a module comparison is ranked and flagged by: the higher of the two files'
    scores between students (either may have copied), the student's own for a corpus file (a
    public file may hold much more than the module)."""
    return match.score_a if kind == "corpus" else max(match.score_a, match.score_b)


def _matched_slices(fp, other):
    """Regions of ``fp`` whose fingerprints ``other`` (which has some of them) also has ->
    (matched filtered characters, (2, R) int array of their raw start/end offsets)."""
    from copydetect.utils import get_copied_slices
    theirs = other.sorted_hashes
    at = np.minimum(np.searchsorted(theirs, fp.position_hashes), theirs.shape[0] - 1)
    idx = fp.positions[theirs[at] == fp.position_hashes]
    slices = np.asarray(get_copied_slices(idx, fp.k), dtype=np.int64)
    overlap = int(np.sum(slices[1] - slices[0]))
    if len(fp.offsets):
        at = np.clip(np.searchsorted(fp.offsets[:, 0], slices), 0, fp.offsets.shape[0] - 1)
        slices = slices + fp.offsets[:, 1][at]
    return overlap, slices


def compare(a: Document, b: Document) -> Match:
    """Compare two fingerprinted Documents -> Match. The same numbers as copydetect's
    ``compare_files(a.fp, b.fp)``, faster on long files."""
    if not (a.fp.hashes & b.fp.hashes):
        empty = np.zeros((2, 0), dtype=np.int64)
        return Match(a, b, 0.0, 0.0, 0, empty, empty)
    overlap_a, slices_a = _matched_slices(a.fp, b.fp)
    overlap_b, slices_b = _matched_slices(b.fp, a.fp)
    return Match(a, b, overlap_a / a.fp.token_coverage, overlap_b / b.fp.token_coverage,
                 overlap_a, slices_a, slices_b)


def common_hashes(docs: list[Document], settings: Settings) -> set:
    """Fingerprints present in more than ``settings.common`` of the documents ``docs`` (one
    module of every submission), when there are at least ``settings.min_common`` of them."""
    if len(docs) < max(settings.min_common, 1):
        return set()
    counts = Counter(h for d in docs for h in d.fp.hashes)
    limit = settings.common * len(docs)
    return {h for h, c in counts.items() if c > limit}


_WORK = {}  # what the tasks read: set before a pool forks, so every worker inherits it


def _run(task, items, jobs, desc, quiet, **work):
    """[task(x) for x in items] with a progress bar, on ``jobs`` forked worker processes when
    there are several jobs, enough items and the platform can fork (else in this process).
    Tasks read ``work`` from ``_WORK`` (cleared after); they compute, never run student code."""
    from tqdm import tqdm
    out = []
    _WORK.update(work)
    try:
        with tqdm(total=len(items), desc=desc, unit="", disable=quiet, leave=False,
                  file=sys.stderr, dynamic_ncols=True) as bar, contextlib.ExitStack() as stack:
            results = map(task, items)
            if jobs > 1 and len(items) >= 8 * jobs \
                    and "fork" in multiprocessing.get_all_start_methods():
                pool = stack.enter_context(multiprocessing.get_context("fork").Pool(jobs))
                results = pool.imap(task, items, chunksize=max(1, len(items) // (jobs * 16)))
            for result in results:
                out.append(result)
                bar.update()
    finally:
        _WORK.clear()
    return out


def _fingerprint_task(i):
    return fingerprint(_WORK["docs"][i].code, _WORK["settings"], _WORK["boilerplate"][i])


def fingerprint_all(inputs: Inputs, settings: Settings, jobs: int = 1,
                    quiet: bool = True) -> None:
    """Fingerprint every document of ``inputs`` in place: release boilerplate is dropped from
    the students' modules, then fingerprints common to much of the class (see ``Settings``)."""
    stubs = paths.stub_files()
    students = [d for s in inputs.students.values() for d in s.values()]
    corpus = [d for ds in inputs.corpus.values() for d in ds]
    boilerplate = {m: Boilerplate.of(_decode(stubs[m]), settings.noise)
                   for m in course.STUDENT_MODULES if m in stubs}
    fps = _run(_fingerprint_task, list(range(len(students) + len(corpus))), jobs, "fingerprints",
               quiet, docs=students + corpus, settings=settings,
               boilerplate=[boilerplate.get(d.label) for d in students] + [None] * len(corpus))
    for doc, fp in zip(students + corpus, fps):
        doc.fp = fp
    for mod in course.STUDENT_MODULES:
        of_mod = [s[mod] for s in inputs.students.values() if mod in s]
        common = common_hashes(of_mod, settings)
        for d in of_mod:
            d.fp = d.fp.drop(common)


def _compare_task(task):
    """(student, module, other, corpus source or None) -> Match fields without the Documents:
    (score_a, score_b, overlap, slices_a, slices_b, index of the other file)."""
    a, mod, b, source = task
    doc = _WORK["students"][a][mod]
    others = _WORK["corpus"][b] if source else [_WORK["students"][b][mod]]
    best = None
    for k, other in enumerate(others):
        x = compare(doc, other)
        if best is None or x.score_a > best[0]:
            best = (x.score_a, x.score_b, x.overlap, x.slices_a, x.slices_b, k)
    return best


def compare_all(inputs: Inputs, settings: Settings, jobs: int = 1,
                quiet: bool = True) -> list[Pair]:
    """Every pair of submissions and every (submission, corpus source) -> [Pair], ranked:
    flagged first, then by score (highest first), then by names."""
    names = sorted(inputs.students)
    pairs, tasks = [], []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pairs.append(Pair(a, b, "class", {}))
            tasks += [(a, m, b, False) for m in course.STUDENT_MODULES
                      if m in inputs.students[a] and m in inputs.students[b]]
        for src in sorted(inputs.corpus):
            pairs.append(Pair(a, src, "corpus", {}))
            tasks += [(a, m, src, True) for m in course.STUDENT_MODULES
                      if m in inputs.students[a]]
    results = _run(_compare_task, tasks, jobs, "comparisons", quiet, students=inputs.students,
                   corpus=inputs.corpus)
    by_key = {(p.a, p.b): p for p in pairs}
    for (a, mod, b, source), (sa, sb, overlap, slices_a, slices_b, k) in zip(tasks, results):
        other = inputs.corpus[b][k] if source else inputs.students[b][mod]
        by_key[(a, b)].matches[mod] = Match(inputs.students[a][mod], other, sa, sb, overlap,
                                            slices_a, slices_b)
    for p in pairs:
        scores = {m: module_score(x, p.kind) for m, x in p.matches.items()}
        p.score = max(scores.values(), default=0.0)
        p.flagged = [m for m, s in scores.items()
                     if s >= settings.threshold and p.matches[m].overlap >= settings.min_match]
    pairs.sort(key=lambda p: (not p.flagged, -round(p.score, 6), p.kind, p.a, p.b))
    return pairs


def pairs_json(pairs: list[Pair], inputs: Inputs, settings: Settings) -> dict:
    """The scores of every pair and module as a JSON-able dict (no paths of this machine, no
    times: the same inputs give the same bytes)."""
    return {
        "settings": asdict(settings),
        "submissions": sorted(inputs.students),
        "corpus": sorted(inputs.corpus),
        "problems": list(inputs.problems),
        "pairs": [{
            "a": p.a, "b": p.b, "kind": p.kind, "score": round(p.score, 4),
            "flagged": p.flagged,
            "modules": {m: {"score": round(module_score(x, p.kind), 4),
                            "score_a": round(x.score_a, 4), "score_b": round(x.score_b, 4),
                            "matched_chars": x.overlap,
                            "file_a": x.a.path, "file_b": x.b.path}
                        for m, x in p.matches.items()},
        } for p in pairs],
    }


# --------------------------------------------------------------------------- command line

def summary_lines(pairs: list[Pair], top: int) -> list[str]:
    """Readable ranked list of the ``top`` first pairs."""
    lines = []
    for rank, p in enumerate(pairs[:top], 1):
        mods = ", ".join(f"{m} {module_score(x, p.kind):.0%}" for m, x in p.matches.items()
                         if module_score(x, p.kind) > 0)
        mark = "FLAGGED " if p.flagged else ""
        lines.append(f"{rank:4d}. {mark}{p.a} ~ {p.b} ({p.kind}): {p.score:.0%}"
                     + (f"  [{mods}]" if mods else ""))
    return lines


def run(args: argparse.Namespace) -> int:
    """The ``similarity`` command (``args``: the options of ``python -m autograder similarity
    --help``); returns the exit status."""
    settings = Settings(noise=args.noise, window=args.window, threshold=args.threshold,
                        min_match=args.min_match, common=args.common)
    try:
        settings.check()
        inputs = read_inputs(args.submissions, args.corpus)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(inputs.students) + (1 if inputs.corpus else 0) < 2:
        print("error: give at least two submissions, or one and --corpus", file=sys.stderr)
        return 2
    jobs = max(1, args.jobs)
    fingerprint_all(inputs, settings, jobs=jobs, quiet=args.quiet)
    pairs = compare_all(inputs, settings, jobs=jobs, quiet=args.quiet)
    from autograder import similarity_report
    similarity_report.write(args.out, pairs, inputs, settings)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(pairs_json(pairs, inputs, settings), f, indent=1, sort_keys=True)
            f.write("\n")
    for line in inputs.problems:
        print(f"note: {line}", file=sys.stderr)
    try:
        flagged = sum(1 for p in pairs if p.flagged)
        print(f"{len(inputs.students)} submission(s), {len(inputs.corpus)} corpus source(s), "
              f"{len(pairs)} pair(s), {flagged} flagged (threshold {settings.threshold:g}); "
              f"report: {args.out}")
        for line in summary_lines(pairs, args.top):
            print(line)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")
    return 0
