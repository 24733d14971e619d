"""scratchnn: neural networks from scratch in NumPy.

The public names; everything else is internal.
"""

from . import datasets, preprocessing, regularizers, schedules, training
from .callbacks import (Callback, EarlyStopping, History, LambdaCallback, LearningRateScheduler,
                        ModelCheckpoint, ReduceLROnPlateau)
from .gradcheck import gradcheck, numerical_gradient
from .layers import (ELU, GELU, AvgPool2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                     GlobalAveragePooling2D, Identity, Layer, LayerNormalization, LeakyReLU,
                     MaxPool2D, RandomFlip, RandomTranslation, ReLU, Reshape, Sigmoid,
                     Softmax, Tanh, register_layer)
from .losses import MAE, MSE, BinaryCrossEntropy, CrossEntropy, Huber, Loss
from .io import load, save
from .model import Sequential
from .training import DivergenceError
from .optimizers import SGD, AdaGrad, Adam, AdamW, Optimizer, RMSProp
from .lbfgs import LBFGS
from .regularizers import L1, L1L2, L2

__version__ = "0.1.0"


def export_onnx(model, path, **kwargs) -> str:
    """Write ``model`` to an ONNX file: ``scratchnn.onnx.export_onnx`` (its keyword
    arguments: ``probabilities``, ``opset``, ``overwrite``), imported on call so that
    ``import scratchnn`` never imports ``onnx`` (the ``onnx`` extra)."""
    from .onnx import export_onnx as export
    return export(model, path, **kwargs)


__all__ = [
    "Sequential", "DivergenceError", "save", "load", "export_onnx",
    "Layer", "Dense", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "GELU",
    "Softmax", "Dropout", "Flatten", "Reshape", "Conv2D", "MaxPool2D", "AvgPool2D",
    "GlobalAveragePooling2D", "BatchNormalization", "LayerNormalization", "RandomFlip",
    "RandomTranslation", "register_layer",
    "Loss", "MSE", "MAE", "Huber", "BinaryCrossEntropy", "CrossEntropy",
    "Optimizer", "SGD", "Adam", "AdamW", "RMSProp", "AdaGrad", "LBFGS",
    "L1", "L2", "L1L2",
    "Callback", "History", "LambdaCallback", "EarlyStopping", "ModelCheckpoint",
    "LearningRateScheduler", "ReduceLROnPlateau",
    "datasets", "preprocessing", "regularizers", "schedules", "training",
    "gradcheck", "numerical_gradient",
]
