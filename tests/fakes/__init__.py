"""Fakes for what we do not own (upstream servers), speaking the real wire formats."""
