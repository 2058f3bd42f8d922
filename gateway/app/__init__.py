"""The running gateway: config assembly, the ``Gateway`` service that wires every stage
together, its dashboard adapter, the file checks and ``doctor``."""
