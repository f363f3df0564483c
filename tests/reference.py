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
