"""Stage 2: backbones turn image records into cached (N, d) feature matrices."""
