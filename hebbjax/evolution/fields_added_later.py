"""The evolve configs' fields added after runs could have been started without them.

Each field maps to the value that reproduces what those runs did: a saved config that lacks one
reads it as this value (:func:`hebbjax.evolution.experiment.setting`), and a resumed run may
lack it when the current value is this one (:func:`hebbjax.run.workdir.check_resumable`). Add a
field here whenever an evolve config gains one; the ``es.*`` fields come from the strategies'
table (:func:`hebbjax.es.registry.field_defaults`). The language models' table is
:data:`hebbjax.lm.experiment.FIELDS_ADDED_LATER`.

Importing this module starts no JAX backend (a resumed multi-process run reads it before it
joins its job).
"""

from __future__ import annotations

from hebbjax.es import registry

FIELDS_ADDED_LATER = {
    "env.train_variants": "", "env.test_variants": "",
    "network.recurrent_size": 0,   # the GRU's size; 0 = the Hebbian network's parameter count
    "network.conv_channels": [], "network.conv_kernel": 3, "network.conv_stride": 1,
    "network.conv_front_end": "evolved",
    # The original code's conventions (issue "The Hebbian half faithful to the original code"):
    # before them the output layer was tanh, actions tanh(.) again then rescaled, a normal
    # init's std was init_scale (0.0 here), kernels N(0, 1/fan_in), episodes ended at done only.
    "network.output_activation": "tanh", "env.action_mode": "tanh_rescale",
    "network.coefficient_init": "normal", "network.normal_std": 0.0,
    "network.conv_init": "fan_in", "network.conv_kernels": [], "network.conv_strides": [],
    "network.conv_pool": 1,
    "rollout.burn_in_steps": 0, "rollout.grace_steps": 0, "rollout.negative_patience": 0,
    "rollout.reward": "env",
    **{f"es.{name}": value for name, value in registry.field_defaults().items()},
}
