"""Contract tests: our gateway against the reference Apollo gateway."""
