"""Claims about features, not only components: world-state variables, probes, DAS, the localisation table.

A layer beside ``analysis`` (it may import ``analysis``, ``evaluation``, ``dt``, ``env`` and ``core``); claims
measures may import it. See docs/features.md.
"""
