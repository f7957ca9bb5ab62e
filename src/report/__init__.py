"""Stage 5: tables and figures read back from MLflow runs."""
