"""rnn_layers reference against an independent computation: PyTorch autograd in float64 of
the twins in autograder/checks/twins.py."""
import numpy as np
import pytest
import torch

from autograder.checks import twins
from seqlab import rnn_layers as L
from seqlab.gradient_check import rel_error

TOL = 1e-10


def t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (1, 1, 2, 3), (4, 7, 8, 8)])
def test_rnn_forward_backward_vs_torch(N, T, D, H):
    rng = np.random.default_rng(N * 100 + T)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    dh = rng.standard_normal((N, T, H))
    h, cache = L.rnn_forward(x, h0, Wx, Wh, b)
    grads = L.rnn_backward(dh, cache)

    tx, th0, tWx, tWh, tb = map(t, (x, h0, Wx, Wh, b))
    th = twins.rnn(tx, th0, tWx, tWh, tb)
    th.backward(torch.tensor(dh))
    assert rel_error(h, th.detach().numpy()) < TOL
    for g, tg in zip(grads, (tx, th0, tWx, tWh, tb)):
        assert rel_error(g, tg.grad.numpy()) < TOL


def test_rnn_step_vs_torch_and_cs231n():
    # The CS231n expected values, recomputed independently with torch.
    N, D, H = 3, 10, 4
    x = np.linspace(-0.4, 0.7, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.2, 0.5, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.1, 0.9, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.3, 0.7, num=H * H).reshape(H, H)
    b = np.linspace(-0.2, 0.4, num=H)
    expected = np.asarray([
        [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
        [0.66854692, 0.79562378, 0.87755553, 0.92795967],
        [0.97934501, 0.99144213, 0.99646691, 0.99854353]])
    tx, th, tWx, tWh, tb = map(t, (x, prev_h, Wx, Wh, b))
    torch_next = twins.rnn_step(tx, th, tWx, tWh, tb)
    assert rel_error(torch_next.detach().numpy(), expected) < 1e-7
    next_h, cache = L.rnn_step_forward(x, prev_h, Wx, Wh, b)
    assert rel_error(next_h, expected) < 1e-7
    dnext = np.random.default_rng(0).standard_normal((N, H))
    torch_next.backward(torch.tensor(dnext))
    for g, tg in zip(L.rnn_step_backward(dnext, cache), (tx, th, tWx, tWh, tb)):
        assert rel_error(g, tg.grad.numpy()) < TOL


def test_embedding_affine_loss_vs_torch():
    rng = np.random.default_rng(7)
    N, T, V, D, M = 4, 6, 7, 5, 9
    idx = rng.integers(V, size=(N, T))
    idx[0, :3] = 2  # repeated words
    W = rng.standard_normal((V, D))
    w, b = rng.standard_normal((D, M)), rng.standard_normal(M)
    y = rng.integers(M, size=(N, T))
    mask = rng.random((N, T)) > 0.3

    emb, c1 = L.word_embedding_forward(idx, W)
    scores, c2 = L.temporal_affine_forward(emb, w, b)
    loss, dscores = L.temporal_softmax_loss(scores, y, mask)
    demb, dw, db = L.temporal_affine_backward(dscores, c2)
    dW = L.word_embedding_backward(demb, c1)

    tW, tw, tb = map(t, (W, w, b))
    tscores = twins.affine(twins.embed(torch.tensor(idx), tW), tw, tb)
    tloss = twins.softmax_loss(tscores, torch.tensor(y), torch.tensor(mask))
    tloss.backward()
    assert abs(loss - tloss.item()) < 1e-10 * max(1, abs(loss))
    assert rel_error(scores, tscores.detach().numpy()) < TOL
    for g, tg in ((dW, tW), (dw, tw), (db, tb)):
        assert rel_error(g, tg.grad.numpy()) < TOL


def test_no_input_modified_and_dtype():
    rng = np.random.default_rng(8)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 3, 4)).astype(dtype)
        y = rng.integers(4, size=(2, 3))
        mask = np.ones((2, 3), dtype=bool)
        before = x.copy()
        loss, dx = L.temporal_softmax_loss(x, y, mask)
        assert np.array_equal(x, before)
        assert dx.dtype == dtype
        dout = rng.standard_normal((2, 3, 5)).astype(dtype)
        w, b = rng.standard_normal((4, 5)).astype(dtype), np.zeros(5, dtype)
        out, cache = L.temporal_affine_forward(x, w, b)
        dcopy = dout.copy()
        grads = L.temporal_affine_backward(dout, cache)
        assert np.array_equal(dout, dcopy)
        assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
        h0 = rng.standard_normal((2, 5)).astype(dtype)
        Wx, Wh, bb = (rng.standard_normal((4, 5)).astype(dtype),
                      rng.standard_normal((5, 5)).astype(dtype), np.zeros(5, dtype))
        h, cache = L.rnn_forward(x, h0, Wx, Wh, bb)
        dh = rng.standard_normal(h.shape).astype(dtype)
        dh_copy = dh.copy()
        L.rnn_backward(dh, cache)
        assert np.array_equal(dh, dh_copy)
        nh, c = L.rnn_step_forward(x[:, 0], h0, Wx, Wh, bb)
        dn = rng.standard_normal(nh.shape).astype(dtype)
        dn_copy = dn.copy()
        L.rnn_step_backward(dn, c)
        assert np.array_equal(dn, dn_copy)
        emb, c = L.word_embedding_forward(y, w)
        de = rng.standard_normal(emb.shape).astype(dtype)
        de_copy = de.copy()
        assert L.word_embedding_backward(de, c).dtype == dtype
        assert np.array_equal(de, de_copy)
