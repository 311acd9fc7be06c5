"""Apply: block parsing and the deterministic path, the safety checks, windows for the model path,
review hunks, the apply stream's events."""
