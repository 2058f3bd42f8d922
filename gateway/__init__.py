"""traceseal gateway, packages in flow order (docs/architecture.md):

core, rules (shared, pure) → transports → adapters → ingest (admit, seal) → journal →
chain (blocks, anchors, export) → station → forward → web → app (service) → cli;
archive is the central sibling; testing holds test kits.
"""

__version__ = "0.1.0"
