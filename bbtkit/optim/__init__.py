"""Optimizers behind the ask/tell seam: they see search vectors and losses, nothing of the model."""
