"""What every training entry point shares: checkpoints, devices and schedules, metrics and the dataclass CLI."""
