"""A convolutional front end for image observations: static weights, features for a plastic head.

The pixel agents of Najarro & Risi (2020, CarRacing) see the screen through convolutional
layers whose weights do not change within an episode, and act through fully connected layers
that are plastic. This module is the front end: ``tanh`` convolutions (``VALID`` padding, no
bias), each optionally followed by max-pooling, on one unbatched ``[height, width, channels]``
image, flattened to a feature vector.

Kernels are ``[kernel, kernel, c_in, c_out]`` (HWIO). The original's architecture is
``ConvFrontEnd(image_shape, channels=(6, 8), kernel=(3, 5), stride=(1, 2), pool=2)`` with
kernels drawn ``N(0, 1)`` (its ``policies.py``: 84×84×3 -> 648 features; it flattens in
``(channel, width, height)`` order, hebbjax in ``(height, width, channel)``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence, Union

import jax
import jax.numpy as jnp

from hebbjax import layout as layout_lib

# "normal": N(0, 1) and "uniform": U(-1, 1), the original's draws (its --distribution);
# "fan_in": N(0, 1 / fan_in), which keeps tanh out of saturation.
KERNEL_INITS = ("normal", "uniform", "fan_in")


@dataclasses.dataclass(frozen=True)
class ConvFrontEnd:
  """Static description of the convolutional layers.

  Attributes:
    image_shape: ``(height, width, channels)`` of an observation.
    channels: output channels of each layer, e.g. ``(8, 16)``.
    kernel: square kernel size, of every layer or one per layer.
    stride: stride, of every layer or one per layer.
    pool: max-pooling window and stride after each layer's ``tanh`` (1: none; the original: 2).
    kernel_init: how :meth:`init` draws kernels, one of :data:`KERNEL_INITS`.
  """

  image_shape: tuple[int, int, int]
  channels: tuple[int, ...]
  kernel: Union[int, tuple[int, ...]] = 3
  stride: Union[int, tuple[int, ...]] = 1
  pool: int = 1
  kernel_init: str = "normal"

  def __post_init__(self):
    if len(self.image_shape) != 3 or min(self.image_shape) < 1:
      raise ValueError(f"image_shape={self.image_shape}: expected (height, width, channels)")
    if not self.channels or min(self.channels) < 1:
      raise ValueError(f"network.conv_channels={self.channels}: expected positive channels")
    for field, values in (("conv_kernel", self.kernels), ("conv_stride", self.strides)):
      if len(values) != len(self.channels) or min(values) < 1:
        raise ValueError(f"network.{field}={getattr(self, field[5:])}: expected a positive "
                         f"integer or one per layer of network.conv_channels={self.channels}")
    if self.pool < 1:
      raise ValueError(f"network.conv_pool={self.pool}: expected a positive integer")
    if self.kernel_init not in KERNEL_INITS:
      raise ValueError(f"network.conv_init={self.kernel_init!r}: expected one of "
                       f"{', '.join(KERNEL_INITS)}")
    height, width = self._output_hw()
    if height < 1 or width < 1:
      raise ValueError(f"network.conv_channels={self.channels}: {len(self.channels)} layers of "
                       f"kernels {self.kernels}, strides {self.strides}, pool {self.pool} do not "
                       f"fit a {self.image_shape[0]}x{self.image_shape[1]} image")

  @property
  def kernels(self) -> tuple[int, ...]:
    """Kernel size of each layer."""
    return _per_layer(self.kernel, len(self.channels))

  @property
  def strides(self) -> tuple[int, ...]:
    """Stride of each layer."""
    return _per_layer(self.stride, len(self.channels))

  def _output_hw(self) -> tuple[int, int]:
    height, width = self.image_shape[:2]
    for kernel, stride in zip(self.kernels, self.strides):
      height = ((height - kernel) // stride + 1) // self.pool
      width = ((width - kernel) // stride + 1) // self.pool
    return height, width

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    """The kernels' shapes, ``[kernel, kernel, c_in, c_out]`` per layer."""
    c_in = (self.image_shape[2],) + self.channels[:-1]
    return layout_lib.ArrayLayout(tuple((k, k, i, o)
                                        for k, i, o in zip(self.kernels, c_in, self.channels)))

  @property
  def num_features(self) -> int:
    """Length of the feature vector the head sees."""
    return math.prod(self._output_hw()) * self.channels[-1]

  def init(self, key: jax.Array) -> jax.Array:
    """Flat kernels ``[layout.size]``: ``N(0, 1)``, ``U(-1, 1)`` or ``N(0, 1 / fan_in)``."""
    keys = jax.random.split(key, len(self.channels))
    if self.kernel_init == "uniform":
      parts = [jax.random.uniform(k, s, jnp.float32, -1.0, 1.0)
               for k, s in zip(keys, self.layout.shapes)]
    else:
      parts = [jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, self.layout.shapes)]
      if self.kernel_init == "fan_in":
        parts = [p / math.sqrt(s[0] * s[1] * s[2]) for p, s in zip(parts, self.layout.shapes)]
    return self.layout.flatten(parts)

  def features(self, kernels: Sequence[jax.Array], image: jax.Array) -> jax.Array:
    """``[height, width, channels]`` image -> ``[num_features]``."""
    x = jnp.asarray(image, jnp.float32).reshape(self.image_shape)[None]
    for kernel, stride in zip(kernels, self.strides):
      x = jnp.tanh(jax.lax.conv_general_dilated(
          x, kernel, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")))
      if self.pool > 1:
        window = (1, self.pool, self.pool, 1)
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, window, "VALID")
    return x.reshape(-1)


def _per_layer(value, n: int) -> tuple[int, ...]:
  if isinstance(value, int):
    return (value,) * n
  return tuple(int(v) for v in value)
