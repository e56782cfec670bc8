"""Query strategies."""
