"""Rollouts in a running system: operations shared by the CLI/HTTP, and the controller."""
