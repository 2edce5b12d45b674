"""Environment suites: each suite is a registration with Sample Factory (see suites/registry.py)."""
