"""The engine (shim until the reorg lands)."""
