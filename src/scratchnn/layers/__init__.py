"""Layers. ``LAYERS`` maps each class name to its class (used by model files)."""

from .activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import BufferSpec, Layer, ParamSpec
from .dense import Dense
from .dropout import Dropout
from .reshape import Flatten

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Dense, Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU, Softmax,
                Dropout, Flatten)
}

# Activations by the names users type in configurations and on the command line.
ACTIVATIONS: dict[str, type[Layer]] = {
    "identity": Identity, "linear": Identity, "sigmoid": Sigmoid, "tanh": Tanh,
    "relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "gelu": GELU, "softmax": Softmax,
}

__all__ = ["Layer", "ParamSpec", "BufferSpec", "Dense", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
           "ELU", "GELU", "Softmax", "Dropout", "Flatten", "LAYERS", "ACTIVATIONS"]
