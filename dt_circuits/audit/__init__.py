"""The auditing game (issue 28): DTs with a planted circuit, their truth checked independently, and the claims'
verdicts scored against it (sensitivity and specificity with Clopper–Pearson intervals)."""
