"""The registries (shim until the reorg lands)."""
