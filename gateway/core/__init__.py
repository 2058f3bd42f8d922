"""Shared core every layer may import: the error tree, clocks, observations, the config table
reader and the typed settings."""
