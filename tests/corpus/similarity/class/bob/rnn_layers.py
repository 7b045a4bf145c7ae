# bob: vectorised with einsum, dictionaries as caches, log-sum-exp for the loss.
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    pre = np.einsum("nd,dh->nh", x, Wx) + np.einsum("nk,kh->nh", prev_h, Wh) + b[None, :]
    next_h = np.tanh(pre)
    cache = {"x": x, "h_in": prev_h, "Wx": Wx, "Wh": Wh, "h_out": next_h}


def rnn_step_backward(dnext_h, cache):
    g = dnext_h * (1.0 - np.square(cache["h_out"]))
    dWx = np.einsum("nd,nh->dh", cache["x"], g)
    dWh = np.einsum("nk,nh->kh", cache["h_in"], g)
    db = g.sum(0)
    dx = np.einsum("nh,dh->nd", g, cache["Wx"])
    dprev_h = np.einsum("nh,kh->nk", g, cache["Wh"])


def rnn_forward(x, h0, Wx, Wh, b):
    steps = x.shape[1]
    proj = np.einsum("ntd,dh->nth", x, Wx) + b
    states = []
    state = h0
    for t in range(steps):
        state = np.tanh(proj[:, t] + np.einsum("nk,kh->nh", state, Wh))
        states.append(state)
    h = np.stack(states, axis=1)
    cache = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "h": h}


def rnn_backward(dh, cache):
    x, h0, Wx, Wh, h = cache["x"], cache["h0"], cache["Wx"], cache["Wh"], cache["h"]
    previous = np.concatenate([h0[:, np.newaxis], h[:, :-1]], axis=1)
    grads = np.zeros_like(h)
    carry = np.zeros_like(h0)
    for t in range(h.shape[1] - 1, -1, -1):
        grads[:, t] = (dh[:, t] + carry) * (1.0 - np.square(h[:, t]))
        carry = np.einsum("nh,kh->nk", grads[:, t], Wh)
    dh0 = carry
    dx = np.einsum("nth,dh->ntd", grads, Wx)
    dWx = np.einsum("ntd,nth->dh", x, grads)
    dWh = np.einsum("ntk,nth->kh", previous, grads)
    db = np.einsum("nth->h", grads)


def word_embedding_forward(x, W):
    out = np.take(W, x, axis=0)
    cache = {"idx": x, "vocab": W.shape[0], "dtype": W.dtype}


def word_embedding_backward(dout, cache):
    D = dout.shape[-1]
    dW = np.zeros((cache["vocab"], D), dtype=cache["dtype"])
    np.add.at(dW, cache["idx"].ravel(), dout.reshape(-1, D))


def temporal_affine_forward(x, w, b):
    out = np.einsum("ntd,dm->ntm", x, w) + b
    cache = {"x": x, "w": w}


def temporal_affine_backward(dout, cache):
    dx = np.einsum("ntm,dm->ntd", dout, cache["w"])
    dw = np.einsum("ntd,ntm->dm", cache["x"], dout)
    db = np.einsum("ntm->m", dout)


def temporal_softmax_loss(x, y, mask):
    batch = x.shape[0]
    top = x.max(axis=-1, keepdims=True)
    log_z = top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True))
    log_p = x - log_z
    target_log_p = np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]
    loss = float(-(target_log_p * mask).sum() / batch)
    dx = np.exp(log_p)
    np.put_along_axis(dx, y[..., None], np.take_along_axis(dx, y[..., None], axis=-1) - 1,
                      axis=-1)
    dx = dx * (mask[..., None] / batch)
