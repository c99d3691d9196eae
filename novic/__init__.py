"""NOVIC: unconstrained open-vocabulary image classification by CLIP inversion."""

__version__ = "0.1.0"
