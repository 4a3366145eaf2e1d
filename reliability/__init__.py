"""The reliability campaigns of `make reliability` (issue 15)."""
