"""Admin and user HTTP API adapter."""
