"""switch/storage package."""
