"""The API layer, what a service would expose: the counted black box (label-word logits for a population of
candidates) and the generation API. Everything above this layer reaches the model only through it."""
