"""traceseal's trust package: everything an auditor needs to verify a bundle.

It depends only on ``cryptography``, ``rfc8785`` and ``requests`` and never imports
``gateway``, so an auditor can install and read it alone. The normative spec is
docs/proof-format.md; this code must match it.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
