"""Helpers shared across mltc that are not components themselves."""
