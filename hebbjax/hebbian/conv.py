"""A convolutional front end for image observations: static weights, features for a plastic head.

The pixel agents of Najarro & Risi (2020, CarRacing) see the screen through convolutional
layers whose weights do not change within an episode, and act through fully connected layers
that are plastic. This module is the front end: ``tanh`` convolutions (``VALID`` padding, no
bias) on one unbatched ``[height, width, channels]`` image, flattened to a feature vector.

Kernels are ``[kernel, kernel, c_in, c_out]`` (HWIO), drawn ``N(0, 1/fan_in)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import jax
import jax.numpy as jnp

from hebbjax import layout as layout_lib


@dataclasses.dataclass(frozen=True)
class ConvFrontEnd:
  """Static description of the convolutional layers.

  Attributes:
    image_shape: ``(height, width, channels)`` of an observation.
    channels: output channels of each layer, e.g. ``(8, 16)``.
    kernel: square kernel size of every layer.
    stride: stride of every layer.
  """

  image_shape: tuple[int, int, int]
  channels: tuple[int, ...]
  kernel: int = 3
  stride: int = 1

  def __post_init__(self):
    if len(self.image_shape) != 3 or min(self.image_shape) < 1:
      raise ValueError(f"image_shape={self.image_shape}: expected (height, width, channels)")
    if not self.channels or min(self.channels) < 1:
      raise ValueError(f"network.conv_channels={self.channels}: expected positive channels")
    if self.kernel < 1 or self.stride < 1:
      raise ValueError(f"network.conv_kernel={self.kernel}, network.conv_stride={self.stride}: "
                       "expected positive integers")
    height, width = self._output_hw()
    if height < 1 or width < 1:
      raise ValueError(f"network.conv_channels={self.channels}: {len(self.channels)} layers of "
                       f"kernel {self.kernel}, stride {self.stride} do not fit a "
                       f"{self.image_shape[0]}x{self.image_shape[1]} image")

  def _output_hw(self) -> tuple[int, int]:
    height, width = self.image_shape[:2]
    for _ in self.channels:
      height = (height - self.kernel) // self.stride + 1
      width = (width - self.kernel) // self.stride + 1
    return height, width

  @property
  def layout(self) -> layout_lib.ArrayLayout:
    """The kernels' shapes, ``[kernel, kernel, c_in, c_out]`` per layer."""
    c_in = (self.image_shape[2],) + self.channels[:-1]
    return layout_lib.ArrayLayout(tuple((self.kernel, self.kernel, i, o)
                                        for i, o in zip(c_in, self.channels)))

  @property
  def num_features(self) -> int:
    """Length of the feature vector the head sees."""
    return math.prod(self._output_hw()) * self.channels[-1]

  def init(self, key: jax.Array) -> jax.Array:
    """Flat kernels ``[layout.size]``, each ``N(0, 1 / fan_in)``."""
    keys = jax.random.split(key, len(self.channels))
    parts = [jax.random.normal(k, s, jnp.float32) / math.sqrt(s[0] * s[1] * s[2])
             for k, s in zip(keys, self.layout.shapes)]
    return self.layout.flatten(parts)

  def features(self, kernels: Sequence[jax.Array], image: jax.Array) -> jax.Array:
    """``[height, width, channels]`` image -> ``[num_features]``."""
    x = jnp.asarray(image, jnp.float32).reshape(self.image_shape)[None]
    for kernel in kernels:
      x = jnp.tanh(jax.lax.conv_general_dilated(
          x, kernel, (self.stride, self.stride), "VALID",
          dimension_numbers=("NHWC", "HWIO", "NHWC")))
    return x.reshape(-1)
