"""A small training loop for the numpy captioning models (given code).

The model only needs two things:
- ``model.params``: a dict of numpy arrays (updated in place by the solver);
- ``model.loss(features, captions)`` returning ``(loss, grads)`` with grads keyed like params.

The solver draws minibatches of (caption, image) pairs, runs Adam on every parameter, keeps
the loss history and shows a tqdm progress bar.
"""
import time

import numpy as np

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - tqdm is in requirements.txt
    tqdm = None


def adam(w, dw, state, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of a parameter array, in place.

    Inputs:
    - w: parameter array (any shape); updated in place
    - dw: its gradient, same shape as w
    - state: dict holding this parameter's moments ``m``, ``v`` and step count ``t``
      (empty on the first call)
    - learning_rate, beta1, beta2, eps: Adam hyperparameters (Kingma & Ba, 2015)
    """
    if "t" not in state:
        state["m"] = np.zeros_like(w)
        state["v"] = np.zeros_like(w)
        state["t"] = 0
    state["t"] += 1
    m, v, t = state["m"], state["v"], state["t"]
    m *= beta1
    m += (1 - beta1) * dw
    v *= beta2
    v += (1 - beta2) * (dw * dw)
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    w -= (learning_rate * m_hat / (np.sqrt(v_hat) + eps)).astype(w.dtype, copy=False)


class Solver:
    """Train a captioning model with Adam on minibatches.

    Inputs:
    - model: an object with ``params`` (dict of arrays) and ``loss(features, captions)``
    - features: image features, shape (Ni, C) pooled or (Ni, P, C) grid
    - captions: integer captions, shape (M, L)
    - image_idxs: for each caption the row of ``features`` it describes, shape (M,)
    - batch_size: captions per minibatch
    - num_epochs: passes over the captions (ignored if num_iterations is given)
    - num_iterations: total number of updates (overrides num_epochs)
    - learning_rate: Adam step size
    - lr_decay: the learning rate is multiplied by this after every epoch
    - grad_clip: if set, clip each gradient's norm to this value
    - seed: seed of the minibatch order
    - progress: show a tqdm progress bar

    After ``train()``: ``loss_history`` (one loss per iteration) and ``train_time`` (seconds).
    """

    def __init__(self, model, features, captions, image_idxs=None, batch_size=100,
                 num_epochs=1, num_iterations=None, learning_rate=1e-3, lr_decay=1.0,
                 grad_clip=None, seed=0, progress=True):
        captions = np.asarray(captions)
        if captions.ndim != 2:
            raise ValueError(f"captions must have shape (M, L), got {captions.shape}")
        if image_idxs is None:
            image_idxs = np.arange(captions.shape[0])
        image_idxs = np.asarray(image_idxs)
        if image_idxs.shape != (captions.shape[0],):
            raise ValueError(f"image_idxs must have shape ({captions.shape[0]},), "
                             f"got {image_idxs.shape}")
        self.model = model
        self.features = features
        self.captions = captions
        self.image_idxs = image_idxs
        self.batch_size = min(batch_size, captions.shape[0])
        self.iterations_per_epoch = max(1, captions.shape[0] // self.batch_size)
        self.num_iterations = (num_iterations if num_iterations is not None
                               else num_epochs * self.iterations_per_epoch)
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.grad_clip = grad_clip
        self.rng = np.random.default_rng(seed)
        self.progress = progress
        self.optim_state = {name: {} for name in model.params}
        self.loss_history = []
        self.train_time = 0.0

    def _minibatch(self):
        idx = self.rng.choice(self.captions.shape[0], self.batch_size, replace=False)
        return self.features[self.image_idxs[idx]], self.captions[idx]

    def step(self):
        """One minibatch: loss, gradients and an Adam update. Returns the loss."""
        features, captions = self._minibatch()
        loss, grads = self.model.loss(features, captions)
        for name, w in self.model.params.items():
            dw = grads[name]
            if self.grad_clip is not None:
                norm = np.linalg.norm(dw)
                if norm > self.grad_clip:
                    dw = dw * (self.grad_clip / norm)
            adam(w, dw, self.optim_state[name], learning_rate=self.learning_rate)
        return float(loss)

    def train(self):
        """Run all iterations; returns the loss history (list of floats)."""
        start = time.perf_counter()
        bar = None
        if self.progress and tqdm is not None:
            bar = tqdm(total=self.num_iterations, desc="training", unit="it")
        for it in range(self.num_iterations):
            loss = self.step()
            if not np.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss} at iteration {it}; "
                                         "check your backward pass or lower the learning rate")
            self.loss_history.append(loss)
            if bar is not None:
                bar.update(1)
                if it % 10 == 0:
                    bar.set_postfix(loss=f"{loss:.3f}")
            if (it + 1) % self.iterations_per_epoch == 0:
                self.learning_rate *= self.lr_decay
        if bar is not None:
            bar.close()
        self.train_time = time.perf_counter() - start
        return self.loss_history
