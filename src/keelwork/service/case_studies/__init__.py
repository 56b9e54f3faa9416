"""The seed's case studies, run on real data (each module: one study's data, its simulated
parts, and how it is scored)."""
