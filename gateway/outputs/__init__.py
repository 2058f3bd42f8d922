"""Local outputs that work with no network: LEDs, buzzer, and the panel's buttons."""
