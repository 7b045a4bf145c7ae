"""Training helpers for the PyTorch models of notebook 04 (given code).

``train_seq2seq`` trains a ``seqlab.transformer.Transformer`` with teacher forcing, label
smoothing, Adam, a linear warm-up followed by a cosine decay of the learning rate, and gradient
clipping; ``train`` is the same loop for any model and loss (``captioning_loss`` for the
``CaptioningTransformer``, fed by ``CaptionBatches`` with ``CAPTION_RECIPE``, the settings of
notebook 04's captioner that ``benchmarks/quality.py`` reuses).
"""
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["count_parameters", "warmup_cosine", "seq2seq_loss", "captioning_loss", "train",
           "train_seq2seq", "CaptionBatches", "CAPTION_RECIPE"]

# The captioning Transformer of notebook 04, section 7: model size, batch size, schedule.
CAPTION_RECIPE = {
    "model": dict(d_model=64, num_heads=4, num_layers=2, d_ff=128, dropout=0.0),
    "batch_size": 100,
    "train": dict(num_steps=450, lr=3e-3, warmup_steps=50),
}


class CaptionBatches:
    """Minibatches of (grid features, captions) for ``train``, in a fresh order every epoch.

    Inputs: ``features`` (num_images, P, C) float array, ``captions`` (num_captions, L) int
    array, ``image_idxs`` (num_captions,) the image of each caption, ``batch_size`` N,
    ``null_idx`` (the ``<NULL>`` index) and ``seed``. Iterating yields ``(features (N, P, C) float
    tensor, captions (N, L') long tensor)`` where ``L' <= L`` drops the columns that are
    ``<NULL>`` in every caption of the batch. Epoch ``e`` uses
    ``np.random.default_rng((seed, e))``, so training is the same on every run; the last
    incomplete batch of an epoch is dropped.
    """

    def __init__(self, features, captions, image_idxs, batch_size, null_idx, seed=0):
        self.features = torch.from_numpy(np.asarray(features))
        self.captions = torch.from_numpy(np.asarray(captions)).long()
        self.image_idxs = np.asarray(image_idxs)
        self.batch_size, self.null_idx, self.seed, self.epoch = batch_size, null_idx, seed, 0
        if len(self.image_idxs) != len(self.captions):
            raise ValueError(f"image_idxs: expected one image per caption, shape "
                             f"({len(self.captions)},), got {self.image_idxs.shape}")
        if not 0 < batch_size <= len(self.captions):
            raise ValueError(f"batch_size: expected 1..{len(self.captions)}, got {batch_size}")

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        order = rng.permutation(len(self.captions))
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            idx = order[start:start + self.batch_size]
            caps = self.captions[idx]
            caps = caps[:, : int((caps != self.null_idx).sum(1).max())]
            yield self.features[self.image_idxs[idx]], caps


def count_parameters(model):
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def warmup_cosine(step, warmup_steps, total_steps, min_factor=0.0):
    """Learning-rate factor at ``step``: rises linearly from ~0 to 1 over ``warmup_steps``,
    then follows half a cosine down to ``min_factor`` at ``total_steps``.

    Post-LN Transformers need the warm-up: a large learning rate on the first, random steps
    sends them astray.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def seq2seq_loss(model, batch, pad_idx=0, label_smoothing=0.0):
    """Teacher-forcing loss of a ``Transformer`` on ``batch = (src, tgt)``.

    The decoder reads ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``; the cross-entropy is averaged
    over the target tokens that are not padding.
    """
    src, tgt = batch
    logits = model(src, tgt[:, :-1])                                   # (N, T-1, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1),
                           ignore_index=pad_idx, label_smoothing=label_smoothing)


def captioning_loss(model, batch, null_idx=0, label_smoothing=0.0):
    """Teacher-forcing loss of a ``CaptioningTransformer`` on ``batch = (features, captions)``:
    input ``captions[:, :-1]``, target ``captions[:, 1:]``, ``<NULL>`` targets ignored."""
    features, captions = batch
    captions = torch.as_tensor(captions).long()
    logits = model(features, captions[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), captions[:, 1:].reshape(-1),
                           ignore_index=null_idx, label_smoothing=label_smoothing)


def train(model, batches, loss_fn, num_steps, lr=1e-3, warmup_steps=100, weight_decay=0.0,
          clip_grad_norm=1.0, time_limit=None, progress=True, log_every=50, eval_fn=None,
          eval_every=None):
    """Train ``model`` for ``num_steps`` optimiser steps and return the history.

    Inputs:
    - model: an ``nn.Module`` (put in train mode here, left in eval mode at the end)
    - batches: a re-iterable of batches (a list, a ``DataLoader``, ``seqlab.dates.DateBatches``);
      it is iterated again when an epoch ends
    - loss_fn: ``loss_fn(model, batch)`` -> scalar loss tensor
    - num_steps: number of optimiser steps (the learning-rate schedule spans them)
    - lr: peak learning rate of Adam (betas 0.9, 0.98, as in the paper)
    - warmup_steps: steps of linear warm-up before the cosine decay (``warmup_cosine``)
    - weight_decay: AdamW weight decay
    - clip_grad_norm: clip the global gradient norm to this value (None: no clipping)
    - time_limit: stop early after this many seconds (None: no limit); the learning rate then
      has not decayed fully, so prefer fewer num_steps for a short run
    - progress: show a tqdm progress bar with the running loss
    - log_every: record the mean loss every this many steps
    - eval_fn, eval_every: call ``eval_fn(model)`` (-> dict of numbers) every ``eval_every``
      steps and at the end (in eval mode; training resumes afterwards)

    Returns a dict: "steps", "loss" (mean training loss of each logging window), "evals" (list
    of (step, dict)), "seconds" (training time, evaluations excluded), "num_steps" (done).
    """
    from tqdm.auto import tqdm

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9,
                                  weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, warmup_steps, num_steps))
    history = {"steps": [], "loss": [], "evals": [], "seconds": 0.0, "num_steps": 0}

    def run_eval(step):
        model.eval()
        history["evals"].append((step, eval_fn(model)))
        model.train()

    model.train()
    bar = tqdm(total=num_steps, disable=not progress, mininterval=0.5)
    window, step, elapsed, start = [], 0, 0.0, time.perf_counter()
    while step < num_steps:
        for batch in batches:
            loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            window.append(loss.item())
            bar.update(1)
            if step % log_every == 0 or step == num_steps:
                history["steps"].append(step)
                history["loss"].append(sum(window) / len(window))
                bar.set_postfix(loss=f"{history['loss'][-1]:.3f}")
                window = []
            if eval_fn is not None and eval_every and step % eval_every == 0 and step < num_steps:
                elapsed += time.perf_counter() - start
                run_eval(step)
                start = time.perf_counter()
            spent = elapsed + time.perf_counter() - start
            if step >= num_steps or (time_limit is not None and spent > time_limit):
                break
        if time_limit is not None and elapsed + time.perf_counter() - start > time_limit:
            break
    elapsed += time.perf_counter() - start
    bar.close()
    if window:  # stopped by the time limit between two logging steps
        history["steps"].append(step)
        history["loss"].append(sum(window) / len(window))
    history["seconds"], history["num_steps"] = elapsed, step
    if eval_fn is not None:
        run_eval(step)
    model.eval()
    return history


def train_seq2seq(model, batches, num_steps, lr=1e-3, warmup_steps=100, label_smoothing=0.1,
                  pad_idx=0, **kwargs):
    """``train`` with ``seq2seq_loss``: ``batches`` yields (src, tgt) LongTensors (see
    ``seqlab.dates.DateBatches``). Other keyword arguments go to ``train``."""
    def loss_fn(m, batch):
        return seq2seq_loss(m, batch, pad_idx=pad_idx, label_smoothing=label_smoothing)

    return train(model, batches, loss_fn, num_steps, lr=lr, warmup_steps=warmup_steps, **kwargs)
