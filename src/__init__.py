"""scaleprobe: linear probes of object scale in CNN hidden layers."""
