"""Which component plays each role a claim names (``obstacle_head`` ...), found per checkpoint."""
