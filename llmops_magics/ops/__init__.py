"""llmops_magics.ops."""
