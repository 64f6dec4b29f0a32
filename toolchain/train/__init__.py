"""Trainers that produce IR networks: evolutionary search and ANN-to-SNN conversion."""
