"""The run machinery every command shares: work directory, metrics, checkpoints, progress, plots."""
