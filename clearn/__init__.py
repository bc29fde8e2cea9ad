"""clearn."""
