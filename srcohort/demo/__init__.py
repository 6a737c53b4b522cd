"""Synthetic multi-site TAVI consortium (``srcohort demo-data``) and the end-to-end demo.

``consortium.generate_consortium`` writes heterogeneous site exports, with injected faults and a
ground truth that only tests and the demo's final comparison read.
"""
