"""The chain: from journaled records to proof. ``blocks`` seals records into signed,
hash-linked Merkle blocks; ``anchoring`` and ``ledgers`` anchor block hashes in a ledger
(local file or EVM chain); ``rotation`` rotates the signing key with a signed record;
``retention`` prunes what is old, anchored (and archived); ``export`` writes the bundles
an auditor verifies with ``ledger_client``.

Nothing is re-exported: ``import gateway.chain.blocks`` stays cheap.
"""
