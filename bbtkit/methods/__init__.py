"""Methods: one module per method and the registry (``registry.METHODS``) that names them. A method puts a
space, an optimizer and an objective together and reaches the model only through the API."""
