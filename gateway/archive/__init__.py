"""The central archive (`traceseal archive`): receives what gateways forward over MQTT
(docs/upstream.md, ``traceseal-upstream/1``), verifies it as an auditor would, stores it
(SQLite embedded, PostgreSQL at scale) and exports the same bundles a gateway does."""
