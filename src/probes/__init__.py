"""Stage 3: linear probes of scale on cached features (plain numpy/scikit-learn)."""
