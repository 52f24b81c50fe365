"""Fuzzing: hostile input, the bomb corpus, Hypothesis strategies, schemathesis hooks."""
