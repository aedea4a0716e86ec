"""Layer 8 (top): the intake command, its views and logging."""
