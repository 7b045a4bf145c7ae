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
    return {"word_to_idx": w2i, "idx_to_word": WORDS, "test_objects": objects}, np.array([caption]), text


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
    prev = analysis.localisation(model, data, "test", captions=captions, attn_weights=attn, shift=-1)
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
