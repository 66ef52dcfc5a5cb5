"""switch/b2bua package."""
