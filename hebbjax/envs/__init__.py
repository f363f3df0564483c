"""Environments a policy is evolved on: gymnax's JAX-native ones behind observation and action
adapters (:mod:`~hebbjax.envs.adapters`), families of altered physics
(:mod:`~hebbjax.envs.variants`) and Brax bodies (:mod:`~hebbjax.envs.brax_envs`)."""

from hebbjax.envs.adapters import EnvSpec, env_spec, make_env

__all__ = ["EnvSpec", "env_spec", "make_env"]
