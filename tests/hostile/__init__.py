"""Hostile site exports: a catalogue of bad inputs and the judge of what conversion made of
each (``python -m tests.hostile`` prints the totals)."""
