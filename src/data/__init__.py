"""Stage 1: annotations and images become image records with a scale ratio."""
