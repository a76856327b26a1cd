"""Side-by-side benchmarks of advlib against Foolbox, torchattacks and native loops.

Run ``python -m benchmarks --help``; see benchmarks/README.md.
"""
