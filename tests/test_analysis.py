"""seqlab.analysis (given helpers of notebooks 02-03 and the quality benchmark)."""
import numpy as np
import pytest

from seqlab import analysis
from seqlab.captioning import CaptioningRNN

WORDS = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "small", "large", "red", "blue", "circle",
         "square", "in", "on", "at", "the", "top", "bottom", "left", "right", "center", "and"]


def fake_data():
    w2i = {w: i for i, w in enumerate(WORDS)}
    cells_red, cells_blue = np.zeros(16, bool), np.zeros(16, bool)
    cells_red[[0, 1]] = True
    cells_blue[[14, 15]] = True
    objects = [[{"color": "red", "shape": "circle", "size": "small", "position": "top left",
                 "layout_cell": 0, "cells": cells_red},
                {"color": "blue", "shape": "square", "size": "large", "position": "bottom right",
                 "layout_cell": 8, "cells": cells_blue}]]
    text = "a small red circle in the top left and a large blue square in the bottom right"
    caption = [w2i[w] for w in text.split()] + [w2i["<END>"]]
    data = {"word_to_idx": w2i, "idx_to_word": WORDS, "test_objects": objects}
    return data, np.array([caption]), text


def test_localisation_pairs_word_t_with_the_weights_of_step_t():
    data, captions, text = fake_data()
    words = text.split()
    T, P = captions.shape[1], 16
    attn = np.full((1, T, P), 1.0 / P)
    for t, w in enumerate(words):          # step t looks exactly at the object word t names
        if w in ("red", "circle"):
            attn[0, t] = 0
            attn[0, t, [0, 1]] = 0.5
        if w in ("blue", "square"):
            attn[0, t] = 0
            attn[0, t, [14, 15]] = 0.5
    model = CaptioningRNN(data["word_to_idx"], 4, cell_type="attention")
    loc = analysis.localisation(model, data, "test", captions=captions, attn_weights=attn)
    assert loc["words"] == 4 and loc["mass"] == pytest.approx(1.0)
    assert loc["uniform"] == pytest.approx(2 / 16) and loc["ratio"] == pytest.approx(8.0)
    assert loc["hit_rate"] == 1.0
    # word t paired with step t + 1: "red" gets the weights of "circle" (same object), "circle"
    # the uniform weights of "in"
    nxt = analysis.localisation(model, data, "test", captions=captions, attn_weights=attn, shift=1)
    assert nxt["mass"] == pytest.approx((1 + 2 / 16) / 2)
    prev = analysis.localisation(model, data, "test", captions=captions, attn_weights=attn,
                                 shift=-1)
    assert prev["mass"] == pytest.approx((2 / 16 + 1) / 2)


def test_localisation_needs_an_attention_model():
    data, captions, _ = fake_data()
    with pytest.raises(ValueError, match="attention"):
        analysis.localisation(CaptioningRNN(data["word_to_idx"], 4, cell_type="lstm"), data)


def test_format_table():
    text = analysis.format_table({"rnn": {"BLEU-1": 0.5, "train time (s)": 3.25},
                                  "attention": {"BLEU-1": 0.75}})
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["model", "BLEU-1"] and len(lines) == 3
    assert "0.500" in lines[1] and "3.2" in lines[1] and "0.750" in lines[2]


def test_train_captioner_rejects_unknown_settings():
    with pytest.raises(TypeError, match="unknown settings"):
        analysis.train_captioner({}, "rnn", hidden_size=3)


def test_recommended_init():
    w2i = {w: i for i, w in enumerate(WORDS)}
    rnn = CaptioningRNN(w2i, input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type="rnn", seed=0)
    lstm = CaptioningRNN(w2i, input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type="lstm", seed=0)
    before = {k: v.copy() for k, v in lstm.params.items()}
    analysis.recommended_init(rnn)
    analysis.recommended_init(lstm)
    assert np.array_equal(rnn.params["Wh"], np.eye(5)) and rnn.params["Wh"].dtype == np.float32
    expected_b = np.zeros(20)
    expected_b[5:10] = analysis.FORGET_BIAS                  # blocks i, f, o, g: f is the second
    assert np.array_equal(lstm.params["b"], expected_b)
    assert all(np.array_equal(v, before[k]) for k, v in lstm.params.items() if k != "b")
    att = CaptioningRNN(w2i, input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type="attention")
    with pytest.raises(ValueError, match="rnn and lstm only"):
        analysis.recommended_init(att)
    with pytest.raises(ValueError, match="init must be"):
        analysis.train_captioner({}, "rnn", init="identity")


def test_train_captioner_in_chunks_equals_one_run():
    """benchmarks/rnn_vs_lstm.py scores a run at several budgets by calling solver.train() again
    with whole learning-rate periods: the weights then equal those of one longer run."""
    rng = np.random.default_rng(0)
    w2i = {w: i for i, w in enumerate(WORDS)}
    data = {"word_to_idx": w2i, "train_features": rng.standard_normal((8, 6)),
            "train_captions": rng.integers(3, len(WORDS), size=(20, 7)),
            "train_image_idxs": rng.integers(8, size=20)}
    data["train_captions"][:, 0] = w2i["<START>"]
    settings = dict(wordvec_dim=4, hidden_dim=5, batch_size=4, lr_decay_every=3, progress=False,
                    init="recommended")
    whole, _ = analysis.train_captioner(data, "lstm", num_iterations=9, **settings)
    part, solver = analysis.train_captioner(data, "lstm", num_iterations=3, **settings)
    lr_after_one_period = solver.learning_rate
    solver.num_iterations = 6
    solver.train()
    assert lr_after_one_period < analysis.TRAIN_SETTINGS["learning_rate"]
    for k in whole.params:
        assert np.array_equal(whole.params[k], part.params[k]), k
