"""GANvas engine: models, operations and documents, with no user interface."""

__version__ = "0.1.0"
