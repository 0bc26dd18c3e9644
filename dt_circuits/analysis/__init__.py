"""Interpretability primitives: interventions, patching, attribution, embeddings, circuits, scans, stats, figures."""
