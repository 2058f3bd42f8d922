"""Helpers shared by tests, benches and the demo: real services on free loopback ports."""
