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
  activity = [np.asarray(x, np.float64)]
  for w in weights:
    activity.append(np.tanh(activity[-1] @ np.asarray(w, np.float64)))
  return activity


def _softmax_stats(scores):
  top = max(scores)
  weights = np.exp(np.array(scores) - top)
  return weights / weights.sum(), top + np.log(weights.sum())


def bucketed_attention(q, k, v, q_buckets, k_buckets, chunk_length, *, shared_qk=True,
                       causal=False, mask=None, dedup=False):
  """LSH attention from its definition, with loops over queries and rounds.

  Round ``r``: positions sorted stably by bucket (separately for queries and keys), cut into
  chunks; query ``i`` sees the keys whose chunk is its own or the one before (wrapping), minus
  padding, the future (causal) and itself (shared QK; itself only if nothing else is visible).
  Without ``dedup`` the rounds' softmax outputs are averaged with weights ``softmax(lse_r)``;
  with it, the result is one softmax over the union of what ``i`` saw in any round.

  Args:
    q, k: ``[L, d]``; v: ``[L, dv]``; ``L`` a multiple of ``chunk_length``.
    q_buckets, k_buckets: ``[R, L]`` ints.
  """
  q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
  length, dim = q.shape
  if shared_qk:
    k = q / np.linalg.norm(q, axis=-1, keepdims=True)
  n_chunks = length // chunk_length
  valid = np.ones(length, bool) if mask is None else np.asarray(mask, bool)

  def chunk_of(buckets):
    rank = np.empty(length, int)
    rank[np.argsort(np.asarray(buckets), kind="stable")] = np.arange(length)
    return rank // chunk_length

  def visible(i, window):
    seen = [j for j in window if valid[j] and not (causal and j > i)
            and not (shared_qk and j == i)]
    return seen or ([i] if shared_qk else [])

  out = np.zeros((length, v.shape[1]))
  windows = []
  for qb, kb in zip(np.asarray(q_buckets), np.asarray(k_buckets)):
    qc, kc = chunk_of(qb), chunk_of(kb)
    windows.append([[j for j in range(length) if kc[j] in (qc[i], (qc[i] - 1) % n_chunks)]
                    for i in range(length)])
  score = lambda i, j: q[i] @ k[j] / np.sqrt(dim) + (-1e5 if shared_qk and i == j else 0.0)
  for i in range(length):
    if dedup:
      seen = visible(i, sorted(set(j for w in windows for j in w[i])))
      p, _ = _softmax_stats([score(i, j) for j in seen])
      out[i] = p @ v[seen]
      continue
    rounds, lses = [], []
    for w in windows:
      seen = visible(i, w[i])
      p, lse = _softmax_stats([score(i, j) for j in seen])
      rounds.append(p @ v[seen])
      lses.append(lse)
    round_weights, _ = _softmax_stats(lses)
    out[i] = round_weights @ np.array(rounds)
  return out


def dense_attention(qk, v, causal=False, mask=None):
  """Shared-QK attention with the self-mask, from its definition."""
  length = len(qk)
  one_bucket = np.zeros((1, length), int)
  return bucketed_attention(qk, qk, v, one_bucket, one_bucket, length, causal=causal, mask=mask)
