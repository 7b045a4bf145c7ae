# bob: gates as a (N, 4, H) block, einsum for every product, dictionary caches.
import numpy as np


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[-1]
    act = np.einsum("nd,dk->nk", x, Wx) + np.einsum("nh,hk->nk", prev_h, Wh) + b
    blocks = act.reshape(-1, 4, H)
    ifo = sigmoid(blocks[:, :3])
    g = np.tanh(blocks[:, 3])
    next_c = ifo[:, 1] * prev_c + ifo[:, 0] * g
    next_h = ifo[:, 2] * np.tanh(next_c)
    cache = {"x": x, "h_in": prev_h, "c_in": prev_c, "Wx": Wx, "Wh": Wh, "ifo": ifo, "g": g,
             "c_out": next_c}


def lstm_step_backward(dnext_h, dnext_c, cache):
    ifo, g = cache["ifo"], cache["g"]
    i, f, o = ifo[:, 0], ifo[:, 1], ifo[:, 2]
    t = np.tanh(cache["c_out"])
    dc = dnext_c + dnext_h * o * (1.0 - np.square(t))
    dblocks = np.stack([dc * g, dc * cache["c_in"], dnext_h * t], axis=1) * ifo * (1.0 - ifo)
    dact = np.concatenate([dblocks.reshape(dc.shape[0], -1), dc * i * (1.0 - np.square(g))],
                          axis=1)
    dprev_c = dc * f
    dx = np.einsum("nk,dk->nd", dact, cache["Wx"])
    dprev_h = np.einsum("nk,hk->nh", dact, cache["Wh"])
    dWx = np.einsum("nd,nk->dk", cache["x"], dact)
    dWh = np.einsum("nh,nk->hk", cache["h_in"], dact)
    db = dact.sum(0)


def lstm_forward(x, h0, Wx, Wh, b):
    state, memory = h0, np.zeros_like(h0)
    outs, steps = [], []
    for xt in np.moveaxis(x, 1, 0):
        state, memory, c = lstm_step_forward(xt, state, memory, Wx, Wh, b)
        outs.append(state)
        steps.append(c)
    h = np.stack(outs, 1)
    cache = {"steps": steps}


def lstm_backward(dh, cache):
    carry_h = np.zeros_like(dh[:, 0])
    carry_c = np.zeros_like(carry_h)
    dxs = []
    totals = None
    for t in range(dh.shape[1] - 1, -1, -1):
        step = lstm_step_backward(dh[:, t] + carry_h, carry_c, cache["steps"][t])
        dxs.append(step[0])
        carry_h, carry_c = step[1], step[2]
        totals = step[3:] if totals is None else tuple(a + b for a, b in zip(totals, step[3:]))
    dx = np.stack(dxs[::-1], 1)
    dh0 = carry_h
    dWx, dWh, db = totals
