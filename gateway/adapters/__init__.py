"""Pure device adapters: ``parse(topic_or_port, raw) -> list[Observation]`` or ParseError."""
