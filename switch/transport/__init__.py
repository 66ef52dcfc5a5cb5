"""switch/transport package."""
