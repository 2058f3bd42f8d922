"""traceseal gateway: transports → adapters → admit → seal → journal → blocks → anchors."""

__version__ = "0.1.0"
