"""emergency package."""
