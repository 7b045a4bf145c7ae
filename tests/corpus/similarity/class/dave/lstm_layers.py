# dave: his own LSTM (np.split into gates, dictionary caches, lists stacked at the end).
import numpy as np


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    pre = np.dot(x, Wx) + np.dot(prev_h, Wh) + b
    gi, gf, go, gg = np.split(pre, 4, axis=1)
    gi, gf, go = sigmoid(gi), sigmoid(gf), sigmoid(go)
    gg = np.tanh(gg)
    next_c = prev_c * gf + gg * gi
    squashed = np.tanh(next_c)
    next_h = squashed * go
    cache = {"x": x, "h": prev_h, "c": prev_c, "Wx": Wx, "Wh": Wh,
             "gates": (gi, gf, go, gg), "tanh_c": squashed}


def lstm_step_backward(dnext_h, dnext_c, cache):
    gi, gf, go, gg = cache["gates"]
    squashed = cache["tanh_c"]
    dc_total = dnext_c + dnext_h * go * (1.0 - squashed * squashed)
    d_pre = np.concatenate((dc_total * gg * gi * (1.0 - gi),
                            dc_total * cache["c"] * gf * (1.0 - gf),
                            dnext_h * squashed * go * (1.0 - go),
                            dc_total * gi * (1.0 - gg * gg)), axis=1)
    dprev_c = dc_total * gf
    dx = np.dot(d_pre, cache["Wx"].T)
    dprev_h = np.dot(d_pre, cache["Wh"].T)
    dWx = np.dot(cache["x"].T, d_pre)
    dWh = np.dot(cache["h"].T, d_pre)
    db = d_pre.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    hs, caches = [], []
    h_t, c_t = h0, np.zeros_like(h0)
    for t in range(x.shape[1]):
        h_t, c_t, cache_t = lstm_step_forward(x[:, t], h_t, c_t, Wx, Wh, b)
        hs.append(h_t)
        caches.append(cache_t)
    h = np.stack(hs, axis=1)
    cache = caches


def lstm_backward(dh, cache):
    grads_x = [None] * dh.shape[1]
    dh_next = np.zeros_like(dh[:, 0])
    dc_next = np.zeros_like(dh[:, 0])
    dWx = dWh = db = 0
    for t in range(dh.shape[1] - 1, -1, -1):
        gx, dh_next, dc_next, gWx, gWh, gb = lstm_step_backward(dh[:, t] + dh_next, dc_next,
                                                                cache[t])
        grads_x[t] = gx
        dWx = dWx + gWx
        dWh = dWh + gWh
        db = db + gb
    dx = np.stack(grads_x, axis=1)
    dh0 = dh_next
