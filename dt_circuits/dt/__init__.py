"""The Decision Transformer: the hooked model, our checkpoint format and the DTI importer, control models."""
