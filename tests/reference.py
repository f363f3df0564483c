"""Independent NumPy references: the original code's loops, written out plainly."""

import numpy as np


def hebbian_loop(weights, pre, post, table, rule):
  """One Hebbian step with explicit loops over synapses, as the original code does.

  Args:
    weights: ``[n_pre, n_post]``.
    table: ``[n_pre * n_post, n_coefficients]``, row ``i * n_post + j`` for synapse ``i -> j``,
      columns in the original's order for ``rule``.
  """
  w = np.array(weights, dtype=np.float64)
  n_pre, n_post = w.shape
  for i in range(n_pre):
    for j in range(n_post):
      c = table[i * n_post + j]
      oi, oj = float(pre[i]), float(post[j])
      if rule == "A":
        d = c[0] * oi * oj
      elif rule == "AD":
        d = c[0] * oi * oj + c[1]
      elif rule == "AD_lr":
        d = (c[0] * oi * oj + c[1]) * c[2]
      elif rule == "ABC":
        d = c[0] * oi * oj + c[1] * oi + c[2] * oj
      elif rule == "ABC_lr":
        d = c[3] * (c[0] * oi * oj + c[1] * oi + c[2] * oj)
      elif rule == "ABCD":
        d = c[3] + (c[0] * oi * oj + c[1] * oi + c[2] * oj)
      elif rule == "ABCD_lr":
        d = c[3] * (c[0] * oi * oj + c[1] * oi + c[2] * oj + c[4])
      elif rule == "ABCD_lr_D_out":
        d = c[3] * (c[0] * oi * oj + c[1] * oi + c[2] * oj) + c[4]
      elif rule == "ABCD_lr_D_in_and_out":
        d = c[3] * (c[0] * oi * oj + c[1] * oi + c[2] * oj + c[4]) + c[5]
      else:
        raise ValueError(rule)
      w[i, j] += d
  return w


def forward(weights, x):
  """The original's network (``policies.py``, ``MLP_heb`` / the head of ``CNN_heb``): bias-free
  layers, ``tanh`` after every hidden layer, and a linear output layer.

  Returns:
    ``[o_0, ..., o_{L-1}, y]``: the input, the hidden activities and the raw output ``y``.
  """
  activity = [np.asarray(x, np.float64)]
  for k, w in enumerate(weights):
    pre = activity[-1] @ np.asarray(w, np.float64)
    activity.append(pre if k == len(weights) - 1 else np.tanh(pre))
  return activity


def original_action(y, family, discrete, low=None, high=None):
  """The action the original sends to ``env.step`` from the raw output ``y``
  (``fitness_functions.py``)."""
  y = np.asarray(y, np.float64)
  if family.startswith("bullet"):
    return np.tanh(y)                       # pybullet clips to [-1, 1]: a no-op after tanh
  if family == "carracing":
    return np.array([np.tanh(y[0]), 1 / (1 + np.exp(-y[1])), 1 / (1 + np.exp(-y[2]))])
  if discrete:
    return int(np.argmax(y))                # numpy: the first index on ties
  return np.clip(y, low, high)


def original_episode(env_step, obs0, weights, tables, rule, *, family, discrete, low=None,
                     high=None, horizon, normalise=None, action_dim=None, one_hot=0):
  """One episode of the original code (``fitness_functions.py``), written out from its
  definitions.

  Args:
    env_step: ``action -> (obs, reward, done, info)``; for ``"bullet_ant"`` the reward used is
      ``info["forward_reward"]``.
    obs0: the observation ``reset`` returned.
    weights: the initial weights ``[n_pre, n_post]`` per layer.
    tables: the original's coefficient table ``[n_synapses, n_coefficients]`` of each layer;
      None for a static network (the baseline ``enajx/ES``: same network, no updates).
    family: ``"gym"``, ``"bullet"``, ``"bullet_ant"`` or ``"carracing"``.
    horizon: at most this many policy steps (hebbjax's fixed horizon).
    normalise: default: every family but Bullet.
    one_hot: for a ``Discrete(n)`` observation, ``n``.

  Returns:
    ``(return, steps, outputs, weight_trace)``: the raw outputs ``y`` and the weights acted
    with, one per step taken.
  """
  bullet = family.startswith("bullet")
  normalise = (not bullet) if normalise is None else normalise
  weights = [np.asarray(w, np.float64) for w in weights]
  if family == "bullet_ant":
    for _ in range(40):                     # burn-in; the observation returned is discarded
      env_step(np.zeros(action_dim))
  obs, total, negatives, outputs, trace = obs0, 0.0, 0, [], []
  for t in range(horizon):
    x = np.eye(one_hot)[int(obs)] if one_hot else np.asarray(obs, np.float64).reshape(-1)
    activity = forward(weights, x)
    y = activity[-1]
    post = np.tanh(y) if bullet else y       # what the last layer's rule sees
    outputs.append(np.tanh(y) if bullet else y)
    trace.append([w.copy() for w in weights])
    obs, reward, done, info = env_step(original_action(y, family, discrete, low, high))
    if family == "bullet_ant":
      reward = info["forward_reward"]
    total += float(reward)
    if bullet:
      stop = False
      if t > 200:
        negatives = negatives + 1 if reward < 0 else 0
        stop = bool(done) or negatives > 30
    elif family == "carracing":
      negatives = negatives + 1 if reward < 0 else 0
      stop = bool(done) or negatives > 20
    else:
      stop = bool(done)
    if stop:
      return total, t + 1, outputs, trace
    if tables is None:
      continue
    posts = activity[1:-1] + [post]
    weights = [hebbian_loop(w, activity[k], posts[k], tables[k], rule)
               for k, w in enumerate(weights)]
    if normalise:
      weights = [w / np.abs(w).max() for w in weights]
  return total, horizon, outputs, trace


def original_tell(theta, noise, fitness, lr, sigma):
  """One update of the original's ES (``evolution_strategy_hebb.py``, ``_update_coeffs``) from
  the penalised fitness of ``n`` antithetic members: member ``2p`` is ``θ + σ ε_p``, member
  ``2p + 1`` is ``θ - σ ε_p``. Ranks by ``argsort`` (for distinct fitness: tied members get an
  arbitrary order there), centered, standardised; SGD ascent.

  Args:
    theta: ``[P]``; noise: ``[n/2, P]`` the ``ε_p``; fitness: ``[n]``.
  """
  fitness = np.asarray(fitness, np.float32)
  n = fitness.size
  ranks = np.empty(n, dtype=int)
  ranks[fitness.argsort()] = np.arange(n)
  y = (ranks.astype(np.float32) / (n - 1) - 0.5).astype(np.float32)
  w = (y - y.mean()) / y.std()
  signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
  perturbations = signs[:, None] * np.repeat(np.asarray(noise, np.float64), 2, axis=0)
  return np.asarray(theta, np.float64) + lr / (n * sigma) * (w @ perturbations)


def original_schedules(lr0, lr_decay, sigma0, generations):
  """The ``(lr, σ)`` each of ``generations`` updates uses in the original: after an update
  ``lr *= decay`` if ``lr > 0.001``, ``σ *= 0.999`` if ``σ > 0.01`` (Python floats)."""
  lrs, sigmas, lr, sigma = [], [], lr0, sigma0
  for _ in range(generations):
    lrs.append(lr)
    sigmas.append(sigma)
    if lr > 0.001:
      lr *= lr_decay
    if sigma > 0.01:
      sigma *= 0.999
  return np.array(lrs), np.array(sigmas)


def _softmax_stats(scores):
  """``(probabilities, log-sum-exp)``; an empty list gives ``([], -inf)``."""
  if not scores:
    return np.zeros(0), -np.inf
  top = max(scores)
  weights = np.exp(np.array(scores) - top)
  return weights / weights.sum(), top + np.log(weights.sum())


def bucketed_attention(q, k, v, q_buckets, k_buckets, chunk_length, *, shared_qk=True,
                       causal=False, mask=None, dedup=False, chunks_before=1, chunks_after=0,
                       concat_rounds=False, scale=None):
  """LSH attention from its definition, with loops over queries, rounds and keys.

  Round ``r``: padding (``mask`` False) moved to a bucket above every other, positions sorted
  stably by bucket (separately for queries and keys), cut into chunks; query ``i`` sees the
  keys whose chunk lies ``-chunks_before .. chunks_after`` chunks from its own (wrapping; with
  ``concat_rounds`` the rounds' chunks form one cyclic sequence, and a key may then appear once
  per round it is met in), less padding and (causal) later positions. Shared QK: keys are the
  unit queries, and a token's own key scores -1e5. Scores ``q·k·scale`` (default ``1/√d``).
  A round in which ``i`` sees nothing gives output 0 and log-sum-exp ``-inf``. Without
  ``dedup`` the rounds' softmax outputs are averaged with weights ``softmax(lse_r)`` (0 if every
  round is empty); with it, the result is one softmax over the union of what ``i`` saw.

  Args:
    q, k: ``[L, d]``; v: ``[L, dv]``; ``L`` a multiple of ``chunk_length``.
    q_buckets, k_buckets: ``[R, L]`` ints.
  """
  q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
  length, dim = q.shape
  scale = 1 / np.sqrt(dim) if scale is None else scale
  if shared_qk:
    k = q / np.linalg.norm(q, axis=-1, keepdims=True)
  n_chunks = length // chunk_length
  valid = np.ones(length, bool) if mask is None else np.asarray(mask, bool)
  q_buckets, k_buckets = np.asarray(q_buckets, np.int64), np.asarray(k_buckets, np.int64)
  n_rounds = len(q_buckets)
  period = n_chunks * n_rounds if concat_rounds else n_chunks
  near = {o % period for o in range(-chunks_before, chunks_after + 1)}

  def chunk_of(buckets):
    padded = np.where(valid, buckets, buckets.max() + 1)
    rank = np.empty(length, int)
    rank[np.argsort(padded, kind="stable")] = np.arange(length)
    return rank // chunk_length

  q_chunks = [chunk_of(b) for b in q_buckets]
  k_chunks = [chunk_of(b) for b in k_buckets]

  def window(i, r):  # the keys query i meets in round r, one entry per meeting
    if concat_rounds:
      here = r * n_chunks + q_chunks[r][i]
      return [j for s in range(n_rounds) for j in range(length)
              if (s * n_chunks + k_chunks[s][j] - here) % period in near]
    return [j for j in range(length) if (k_chunks[r][j] - q_chunks[r][i]) % period in near]

  visible = lambda i, keys: [j for j in keys if valid[j] and not (causal and j > i)]
  score = lambda i, j: -1e5 if shared_qk and i == j else q[i] @ k[j] * scale
  out = np.zeros((length, v.shape[1]))
  for i in range(length):
    if dedup:
      seen = visible(i, sorted(set(j for r in range(n_rounds) for j in window(i, r))))
      p, _ = _softmax_stats([score(i, j) for j in seen])
      out[i] = p @ v[seen] if seen else 0.0
      continue
    rounds, lses = [], []
    for r in range(n_rounds):
      seen = visible(i, window(i, r))
      p, lse = _softmax_stats([score(i, j) for j in seen])
      rounds.append(p @ v[seen] if seen else np.zeros(v.shape[1]))
      lses.append(lse)
    if max(lses) == -np.inf:
      continue
    round_weights, _ = _softmax_stats(lses)
    out[i] = round_weights @ np.array(rounds)
  return out


def dense_attention(qk, v, causal=False, mask=None):
  """Shared-QK attention with the self-mask, from its definition."""
  length = len(qk)
  one_bucket = np.zeros((1, length), int)
  return bucketed_attention(qk, qk, v, one_bucket, one_bucket, length, causal=causal, mask=mask)


def local_qkv_attention(q, k, v, chunk_length, causal, mask, before, after, scale=None):
  """HF transformers' / trax's local attention, query by query: the keys of chunks
  ``(c - before … c + after) mod n_chunks`` (a key seen through two offsets counts twice),
  visible and earlier under ``causal``, scored ``q·k/√dim``; no self-mask; a zero row when
  nothing is seen."""
  q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
  length, dim = q.shape
  n_chunks = -(-length // chunk_length)
  scale = dim ** -0.5 if scale is None else scale
  valid = np.ones(length, bool) if mask is None else np.asarray(mask)
  out = np.zeros((length, v.shape[1]))
  for i in range(length):
    c = i // chunk_length
    seen = [j for o in range(-before, after + 1) for j in range(length)
            if j // chunk_length == (c + o) % n_chunks and valid[j] and (not causal or j <= i)]
    if not seen:
      continue
    scores = k[seen] @ q[i] * scale
    weights = np.exp(scores - scores.max())
    out[i] = weights @ v[seen] / weights.sum()
  return out


def local_attention(qk, v, chunk_length, causal, mask, before, after, scale=None):
  """For each query: the keys of chunks ``c - before … c + after`` (no wrap), visible and
  earlier under ``causal``; itself only when nothing else is; a zero row when nothing is."""
  qk, v = np.asarray(qk, np.float64), np.asarray(v, np.float64)
  length, dim = qk.shape
  keys = qk / np.linalg.norm(qk, axis=-1, keepdims=True)
  scale = dim ** -0.5 if scale is None else scale
  valid = np.ones(length, bool) if mask is None else np.asarray(mask)
  out = np.zeros((length, v.shape[1]))
  for i in range(length):
    c = i // chunk_length
    seen = [j for j in range(length)
            if c - before <= j // chunk_length <= c + after and valid[j]
            and (not causal or j <= i)]
    others = [j for j in seen if j != i]
    seen = others or seen
    if not seen:
      continue
    scores = keys[seen] @ qk[i] * scale
    weights = np.exp(scores - scores.max())
    out[i] = weights @ v[seen] / weights.sum()
  return out


def momentum_ascent(theta, gradients, lrs, momentum):
  """Heavy-ball SGD ascent, written out: ``v ← g_t + μ v`` (``v = 0`` first), ``θ ← θ + α_t v``.

  Args:
    theta: ``[P]``; gradients: ``[T, P]`` the estimates ``g_t``; lrs: ``[T]`` the ``α_t``.

  Returns:
    ``[T, P]``: ``θ`` after each step.
  """
  theta = np.asarray(theta, np.float64)
  velocity, out = np.zeros_like(theta), []
  for g, lr in zip(np.asarray(gradients, np.float64), lrs):
    velocity = g + momentum * velocity
    theta = theta + lr * velocity
    out.append(theta)
  return np.array(out)


def auto_member_batch(platform, device_memory, num_params, population):
  """``es.member_batch="auto"`` as the README and ``docs/results.md`` state it: 64 members at a
  time on a CPU (the measured cache-sized block); on a GPU/TPU every member at once while half
  the device's memory holds 32 bytes per parameter of every member in flight, else the largest
  block that it holds (never below one member); a device of unknown memory: all at once."""
  if platform == "cpu":
    return 64
  if not device_memory:
    return None
  block = population
  while block > 1 and block * num_params * 32 > device_memory / 2:
    block -= 1
  return None if block == population else block


def layer_planes(h, sizes, k):
  """A network's flat coefficients as ``hebbjax.coefficient_layout`` documents them (arrays
  ``[k, n_pre, n_post]`` one layer after another): in a layer ``n_pre → n_post``, coefficient
  ``c`` of synapse ``i → j`` at offset ``c·n_pre·n_post + i·n_post + j``. ``k`` coefficients
  per synapse (a static network: ``k=1``, its weights). Returns per layer ``[k, n_pre, n_post]`` (float64), by explicit loops."""
  h = np.asarray(h, np.float64)
  planes, start = [], 0
  for n_pre, n_post in zip(sizes[:-1], sizes[1:]):
    plane = np.zeros((k, n_pre, n_post))
    for c in range(k):
      for i in range(n_pre):
        for j in range(n_post):
          plane[c, i, j] = h[start + (c * n_pre + i) * n_post + j]
    planes.append(plane)
    start += k * n_pre * n_post
  if start != h.size:
    raise ValueError(f"h has {h.size} values, the layout {start}")
  return planes


def original_table(h, sizes, k):
  """The original code's ``[n_synapses, k]`` coefficient table of ``h``: synapses layer after
  layer, pre-major (row ``i·n_post + j`` of a layer is ``i → j``), one column per
  coefficient in the rule's order."""
  rows = [plane[:, i, j] for plane in layer_planes(h, sizes, k)
          for i in range(plane.shape[1]) for j in range(plane.shape[2])]
  return np.array(rows)


def numerical_gradients(loss, args, eps=1e-5):
  """Central differences of ``loss(*args)`` (float64 NumPy arrays) for every argument."""
  grads = []
  for index, arg in enumerate(args):
    grad = np.zeros_like(arg)
    for position in np.ndindex(arg.shape):
      shifted = [list(args), list(args)]
      for sign, copy in zip((1, -1), shifted):
        moved = arg.copy()
        moved[position] += sign * eps
        copy[index] = moved
      grad[position] = (loss(*shifted[0]) - loss(*shifted[1])) / (2 * eps)
    grads.append(grad)
  return grads


def softmax_attention(q, k, v, mask=None, scale=None):
  """Dense softmax attention with separate queries and keys, ``softmax(q kᵀ·scale) v`` (default
  ``1/√d``), padding keys (``mask`` False) hidden."""
  q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
  scale = q.shape[1] ** -0.5 if scale is None else scale
  scores = q @ k.T * scale
  if mask is not None:
    scores = np.where(np.asarray(mask, bool)[None, :], scores, -np.inf)
  weights = np.exp(scores - scores.max(-1, keepdims=True))
  return weights / weights.sum(-1, keepdims=True) @ v


def linformer_attention(q, k, v, proj_k, proj_v, mask=None):
  """Linformer's Eq. (7) written out: padding rows of ``k``, ``v`` set to 0, then each query
  ``i`` scores the projected keys ``Σ_j E[r, j] k_j`` and averages the projected values."""
  q, k, v, e, f = (np.asarray(a, np.float64) for a in (q, k, v, proj_k, proj_v))
  valid = np.ones(len(q), bool) if mask is None else np.asarray(mask, bool)
  k, v = k * valid[:, None], v * valid[:, None]
  keys = np.array([sum(e[r, j] * k[j] for j in range(len(k))) for r in range(len(e))])
  values = np.array([sum(f[r, j] * v[j] for j in range(len(v))) for r in range(len(f))])
  out = np.zeros((len(q), v.shape[1]))
  for i in range(len(q)):
    scores = keys @ q[i] / np.sqrt(q.shape[1])
    weights = np.exp(scores - scores.max())
    out[i] = weights @ values / weights.sum()
  return out
