"""switch/transaction package."""
