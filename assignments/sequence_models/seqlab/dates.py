"""The dates task: translate human-written dates into ISO 8601 (notebook 04; given code).

    "27 novembre 2026"            -> "2026-11-27"
    "Friday, 27 November 2026"    -> "2026-11-27"
    "27. Nov. 2026"               -> "2026-11-27"
    "viernes, 27 de noviembre de 2026" -> "2026-11-27"

The source strings are written by ``babel`` from the Unicode CLDR locale data (the month and
weekday names, abbreviations and word orders that real software uses), in several locales and
several *non-numeric* formats: a model has to learn month names in four languages, reorder
day/month/year, pad the day to two digits, and ignore the weekday. It is a small, honest
sequence-to-sequence task that a Transformer learns in about a minute on a laptop CPU.

Everything is deterministic from a seed. The test and validation *dates* are held out: no
calendar date of the test set appears in the training set in any locale or format, so a good
score measures generalisation to unseen dates, not memorised strings.

Vocabularies are character level, with ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2, ``<unk>`` = 3.

Typical use::

    data = load_dates_data(seed=0)
    src_vocab, tgt_vocab = data["src_vocab"], data["tgt_vocab"]
    batches = DateBatches(data["train"], src_vocab, tgt_vocab, batch_size=256, seed=0)
    ... train ...
    predictions = translate(model, [p.source for p in data["test"]], src_vocab, tgt_vocab)
    exact_match(predictions, [p.target for p in data["test"]])
"""
import datetime as _dt
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "LOCALES", "FORMATS", "YEARS", "RECIPE", "DatePair", "CharVocab", "format_date_text",
    "load_dates_data",
    "make_pairs", "encode_batch", "DateBatches", "translate", "exact_match", "chrf", "evaluate",
]

#: Default locales: English (US and UK word orders), French, German, Spanish.
LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES")

#: Default formats, all non-numeric (the month is a word). Names map to a babel format:
#: "abbr" is the CLDR skeleton yMMMd (abbreviated month, e.g. "Nov 27, 2026", "27 nov. 2026",
#: "27. Nov. 2026"), "long" the locale's long format ("27. November 2026"), "full" the locale's
#: full format with the weekday ("vendredi 27 novembre 2026").
FORMATS = ("abbr", "long", "full")

_BABEL_FORMATS = {"abbr": ("skeleton", "yMMMd"), "long": ("format", "long"),
                  "full": ("format", "full")}

#: Years of the default calendar range (inclusive).
YEARS = (1950, 2049)

PAD, START, END, UNK = "<pad>", "<s>", "</s>", "<unk>"

#: The training recipe of notebook 04 for ``seqlab.transformer.Transformer`` on the default data
#: (``load_dates_data(seed=0)``): keyword arguments of ``Transformer`` ("model"), the batch size
#: of ``DateBatches``, and keyword arguments of ``seqlab.torch_utils.train_seq2seq`` ("train").
RECIPE = {
    "model": dict(d_model=64, num_heads=4, num_layers=2, d_ff=128, dropout=0.0, max_len=64),
    "batch_size": 128,
    "train": dict(num_steps=700, lr=3e-3, warmup_steps=100, label_smoothing=0.1),
}


class DatePair(NamedTuple):
    """One example: ``source`` (the written date), ``target`` (ISO ``YYYY-MM-DD``), the
    ``date`` itself (a ``datetime.date``), and the ``locale`` and format name that wrote it."""
    source: str
    target: str
    date: _dt.date
    locale: str
    fmt: str


def format_date_text(date, locale, fmt):
    """Write ``date`` (a ``datetime.date``) in ``locale`` (e.g. "fr_FR") with format ``fmt``
    (one of "abbr", "long", "full", or any babel format name / pattern). Every kind of
    whitespace (CLDR uses no-break spaces in some locales) becomes a plain space."""
    from babel.dates import format_date, format_skeleton

    kind, value = _BABEL_FORMATS.get(fmt, ("format", fmt))
    if kind == "skeleton":
        text = format_skeleton(value, date, locale=locale)
    else:
        text = format_date(date, value, locale=locale)
    return " ".join(text.split())


class CharVocab:
    """A character vocabulary with ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2, ``<unk>`` = 3.

    Attributes: ``itos`` (list: index -> token), ``stoi`` (dict: token -> index), ``pad_idx``,
    ``start_idx``, ``end_idx``, ``unk_idx``. ``len(vocab)`` is the vocabulary size.
    """

    def __init__(self, chars):
        specials = [PAD, START, END, UNK]
        self.itos = specials + sorted(set(chars) - set(specials))
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        self.pad_idx, self.start_idx, self.end_idx, self.unk_idx = 0, 1, 2, 3

    def __len__(self):
        return len(self.itos)

    def __repr__(self):
        return f"CharVocab({len(self)} tokens: {''.join(self.itos[4:])!r})"

    def encode(self, text):
        """``text`` -> list of ids ``[<s>, c1, ..., cL, </s>]``; unknown characters -> ``<unk>``."""
        return [self.start_idx] + [self.stoi.get(c, self.unk_idx) for c in text] + [self.end_idx]

    def decode(self, ids):
        """List / 1-D tensor of ids -> string: skips ``<s>`` and ``<pad>``, stops at ``</s>``;
        ``<unk>`` is written as "?"."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            i = int(i)
            if i == self.end_idx:
                break
            if i in (self.pad_idx, self.start_idx):
                continue
            out.append("?" if i == self.unk_idx else self.itos[i])
        return "".join(out)


def _all_dates(years):
    first, last = _dt.date(years[0], 1, 1), _dt.date(years[1], 12, 31)
    return [first + _dt.timedelta(days=k) for k in range((last - first).days + 1)]


def make_pairs(dates, locales, formats, rng):
    """One ``DatePair`` per date, each written in a random (locale, format) drawn with ``rng``
    (a ``numpy.random.Generator``)."""
    loc_ids = rng.integers(len(locales), size=len(dates))
    fmt_ids = rng.integers(len(formats), size=len(dates))
    pairs = []
    for date, li, fi in zip(dates, loc_ids, fmt_ids):
        loc, fmt = locales[li], formats[fi]
        pairs.append(DatePair(format_date_text(date, loc, fmt), date.isoformat(), date, loc, fmt))
    return pairs


def _source_chars(locales, formats):
    """Every character any (locale, format) can write: render every day of a leap year
    (all month names, all weekday names) plus all digits."""
    chars = set("0123456789")
    for date in _all_dates((2024, 2024)):
        for loc in locales:
            for fmt in formats:
                chars.update(format_date_text(date, loc, fmt))
    return chars


def load_dates_data(n_train=40000, n_val=1000, n_test=1000, seed=0, locales=LOCALES,
                    formats=FORMATS, years=YEARS):
    """Build the dates data set (deterministic from ``seed``; about a second).

    The calendar dates of ``years`` (inclusive range) are shuffled; the first ``n_test`` are
    the test dates, the next ``n_val`` the validation dates, the rest are training dates. Each
    split then writes its dates in random (locale, format) combinations: ``n_train`` training
    pairs are drawn from the training dates (with replacement, so a training date may appear
    in several locales), and each test / validation date appears once.

    Returns a dict with
    - "train", "val", "test": lists of ``DatePair`` (source, target, date, locale, fmt)
    - "src_vocab", "tgt_vocab": ``CharVocab`` of the written dates and of ISO dates
    - "locales", "formats", "years", "seed": the settings used
    """
    locales, formats = tuple(locales), tuple(formats)
    for loc in locales:
        for fmt in formats:
            sample = format_date_text(_dt.date(2026, 11, 27), loc, fmt)
            if not any(c.isalpha() for c in sample):
                raise ValueError(f"load_dates_data: format {fmt!r} is all-numeric in locale "
                                 f"{loc!r} ({sample!r}); the task needs month names")
    rng = np.random.default_rng(seed)
    dates = _all_dates(years)
    if n_val + n_test >= len(dates):
        raise ValueError(f"load_dates_data: n_val + n_test = {n_val + n_test} leaves no "
                         f"training date in {len(dates)} dates of {years}")
    order = rng.permutation(len(dates))
    test_dates = [dates[k] for k in order[:n_test]]
    val_dates = [dates[k] for k in order[n_test:n_test + n_val]]
    train_pool = [dates[k] for k in order[n_test + n_val:]]
    train_dates = [train_pool[k] for k in rng.integers(len(train_pool), size=n_train)]
    return {
        "train": make_pairs(train_dates, locales, formats, rng),
        "val": make_pairs(val_dates, locales, formats, rng),
        "test": make_pairs(test_dates, locales, formats, rng),
        "src_vocab": CharVocab(_source_chars(locales, formats)),
        "tgt_vocab": CharVocab("0123456789-"),
        "locales": locales, "formats": formats, "years": tuple(years), "seed": seed,
    }


def encode_batch(texts, vocab):
    """List of strings -> LongTensor (N, L) of ``vocab.encode`` rows, padded with ``<pad>``
    to the longest row."""
    rows = [vocab.encode(t) for t in texts]
    out = torch.full((len(rows), max(len(r) for r in rows)), vocab.pad_idx, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out


class DateBatches:
    """Minibatches of (src, tgt) LongTensors over a list of ``DatePair``.

    Iterating gives one epoch: every pair once, in batches of ``batch_size`` (the last one may be
    smaller), in a fresh random order every epoch (deterministic from ``seed``). ``src`` is
    (N, S) and ``tgt`` is (N, T), both padded with ``<pad>`` = 0 and written ``<s> ... </s>``;
    for teacher forcing use ``tgt[:, :-1]`` as the decoder input and ``tgt[:, 1:]`` as the target.
    ``len(batches)`` is the number of batches per epoch.

    With ``bucket=True`` (the default) each batch holds sources of similar lengths: the shuffled
    pairs are cut into pools of 32 batches, each pool is sorted by source length and cut into
    batches, and the batches are shuffled. Batches then carry little padding, which makes
    training about 1.5x faster ("Nov 5, 1999" and "miércoles, 27 de septiembre de 2026" rarely
    share a batch).
    """

    POOL = 32

    def __init__(self, pairs, src_vocab, tgt_vocab, batch_size=256, shuffle=True, seed=0,
                 bucket=True):
        self.src = encode_batch([p.source for p in pairs], src_vocab)
        self.tgt = encode_batch([p.target for p in pairs], tgt_vocab)
        self.src_len = (self.src != src_vocab.pad_idx).sum(1)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.bucket = bucket
        self.seed = seed
        self.epoch = 0

    def __len__(self):
        return (len(self.src) + self.batch_size - 1) // self.batch_size

    def _batch_indices(self, rng):
        n, bs = len(self.src), self.batch_size
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if not self.bucket:
            return [order[i:i + bs] for i in range(0, n, bs)]
        lengths = self.src_len.numpy()
        batches = []
        pool = self.POOL * bs
        for start in range(0, n, pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches.extend(chunk[i:i + bs] for i in range(0, len(chunk), bs))
        if self.shuffle:
            batches = [batches[k] for k in rng.permutation(len(batches))]
        return batches

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        for idx in self._batch_indices(rng):
            idx = torch.from_numpy(np.ascontiguousarray(idx))
            src, tgt = self.src[idx], self.tgt[idx]
            # Trim the columns that are padding in the whole batch.
            src = src[:, : int((src != 0).sum(1).max())]
            tgt = tgt[:, : int((tgt != 0).sum(1).max())]
            yield src, tgt


@torch.no_grad()
def translate(model, sources, src_vocab, tgt_vocab, max_len=16, batch_size=500):
    """Translate written dates with ``model.greedy_decode`` (the model is put in eval mode and
    restored afterwards).

    Inputs:
    - model: a ``seqlab.transformer.Transformer`` (anything with ``greedy_decode``)
    - sources: list of strings
    - max_len: maximum output length in tokens, ``<s>`` included (an ISO date takes 12)

    Returns a list of strings.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(sources), batch_size):
            src = encode_batch(sources[start:start + batch_size], src_vocab)
            ys = model.greedy_decode(src, max_len, tgt_vocab.start_idx, tgt_vocab.end_idx)
            out.extend(tgt_vocab.decode(row) for row in ys)
    finally:
        model.train(was_training)
    return out


def exact_match(predictions, references):
    """Fraction (0..1) of predictions equal to their reference string."""
    if len(predictions) != len(references):
        raise ValueError(f"exact_match: {len(predictions)} predictions for "
                         f"{len(references)} references")
    if not references:
        return 0.0
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def chrf(predictions, references):
    """Corpus chrF (character n-gram F-score, 0..100) of sacrebleu: partial credit for nearly
    right outputs such as "2026-11-28" for "2026-11-27"."""
    import sacrebleu

    return sacrebleu.corpus_chrf(list(predictions), [list(references)]).score


def evaluate(model, pairs, src_vocab, tgt_vocab, max_len=16):
    """Translate ``pairs`` and score them: returns a dict with "exact_match" (0..1), "chrF"
    (0..100) and "predictions" (list of strings)."""
    predictions = translate(model, [p.source for p in pairs], src_vocab, tgt_vocab, max_len)
    references = [p.target for p in pairs]
    return {"exact_match": exact_match(predictions, references),
            "chrF": chrf(predictions, references), "predictions": predictions}
