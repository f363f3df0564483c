"""What each ``hebbjax`` command does, as library functions the CLI calls."""
