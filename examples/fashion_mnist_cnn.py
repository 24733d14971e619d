"""A convolutional network on Fashion-MNIST images (N, 28, 28, 1), channels last: the recipe
of ``scratchnn train fashion-mnist --model cnn``.

The files are looked up in $SCRATCHNN_DATA, /usr/share/datasets/fashion-mnist
(apt-get install dataset-fashion-mnist) and the user cache.

    python examples/fashion_mnist_cnn.py              # 15 epochs, see the README for the figures
    python examples/fashion_mnist_cnn.py 1 3000       # a quick run: 1 epoch on 3,000 images
"""

import sys

import scratchnn as snn
from scratchnn.datasets import CLASS_NAMES

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
samples = int(sys.argv[2]) if len(sys.argv) > 2 else None
X_train, y_train, X_test, y_test = snn.datasets.load_fashion_mnist(images=True)
X_train, y_train = X_train[:samples], y_train[:samples]

model = snn.Sequential([
    snn.Conv2D(32, 3, padding="same"), snn.BatchNormalization(), snn.ReLU(), snn.MaxPool2D(2),
    snn.Conv2D(64, 3, padding="same"), snn.BatchNormalization(), snn.ReLU(), snn.MaxPool2D(2),
    snn.Flatten(), snn.Dense(128, kernel_initializer="he_uniform"), snn.ReLU(), snn.Dropout(0.3),
    snn.Dense(10),
], seed=0)
model.fit(X_train, y_train, loss="cross_entropy", optimizer=snn.Adam(lr=1e-3),
          epochs=epochs, batch_size=128, validation_split=0.1, verbose=1,
          callbacks=[snn.LearningRateScheduler(snn.schedules.CosineDecay(1e-3, epochs))])
model.summary()

scores = model.evaluate(X_test, y_test)
print(f"test accuracy {scores['accuracy']:.4f}  test loss {scores['loss']:.4f}")
model.classes = list(CLASS_NAMES)
print("first test images:", model.predict(X_test[:5]).tolist())
print("saved", model.save("fashion_cnn.npz"))
