"""llmops_magics.adapters."""
