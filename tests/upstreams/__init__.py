"""Tests of the upstream adapters, one module each."""
