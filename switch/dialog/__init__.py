"""switch/dialog package."""
