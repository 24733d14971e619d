"""Layers. ``LAYERS`` maps each class name to its class (used by model files);
``register_layer`` adds a layer of your own."""

from .activations import ACTIVATIONS, ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .augmentation import RandomFlip, RandomTranslation
from .base import BufferSpec, Layer, ParamSpec
from .dense import Dense
from .dropout import Dropout
from .conv import Conv2D
from .normalization import BatchNormalization, LayerNormalization
from .pooling import AvgPool2D, GlobalAveragePooling2D, MaxPool2D
from .reshape import Flatten, Reshape

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (Dense, Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU, Softmax,
                Dropout, Flatten, Reshape, Conv2D, MaxPool2D, AvgPool2D, GlobalAveragePooling2D,
                BatchNormalization, LayerNormalization, RandomFlip, RandomTranslation)
}


def register_layer(cls: type) -> type:
    """Register a layer class of your own so that model files can hold it, under its
    class name; use it as a decorator (``@snn.register_layer``) or call it
    (``snn.register_layer(MyLayer)``). Returns the class.

    The class's ``get_config()`` must return its constructor's keyword arguments
    (JSON types), as the built-in layers' do. Registering the same class again is
    allowed; another class of a name already taken is an error (a model file
    names layers by class name). Load files in a program that registered the
    same classes.
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer takes a subclass of scratchnn.Layer, got {cls!r}")
    taken = LAYERS.get(cls.__name__, cls)
    if taken is not cls:
        raise ValueError(f"the layer name {cls.__name__!r} is taken by {taken.__module__}."
                         f"{taken.__qualname__}; rename your class")
    LAYERS[cls.__name__] = cls
    return cls


__all__ = ["Layer", "ParamSpec", "BufferSpec", "Dense", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
           "ELU", "GELU", "Softmax", "Dropout", "Flatten", "Reshape",
           "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAveragePooling2D", "BatchNormalization",
           "LayerNormalization", "RandomFlip", "RandomTranslation", "LAYERS", "ACTIVATIONS", "register_layer"]
