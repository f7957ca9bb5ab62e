"""Stage 4: the only package that talks to MLflow."""
