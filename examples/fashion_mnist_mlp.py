"""An MLP on Fashion-MNIST (60,000 training and 10,000 test images, 10 classes).

The files are looked up in $SCRATCHNN_DATA, /usr/share/datasets/fashion-mnist
(apt-get install dataset-fashion-mnist) and the user cache.

    python examples/fashion_mnist_mlp.py            # about 30 epochs; ~0.89-0.90 test accuracy
    python examples/fashion_mnist_mlp.py 3          # a quick run of 3 epochs
"""

import sys

import scratchnn as snn
from scratchnn.datasets import CLASS_NAMES

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
X_train, y_train, X_test, y_test = snn.datasets.load_fashion_mnist()   # (N, 784) float32 in [0, 1]

model = snn.Sequential([
    snn.Dense(512, kernel_initializer="he_uniform"), snn.ReLU(), snn.Dropout(0.2),
    snn.Dense(256, kernel_initializer="he_uniform"), snn.ReLU(), snn.Dropout(0.2),
    snn.Dense(10),
], seed=0)
model.fit(X_train, y_train, loss="cross_entropy", optimizer=snn.Adam(lr=1e-3),
          epochs=epochs, batch_size=128, validation_split=0.1, verbose=1,
          callbacks=[snn.LearningRateScheduler(snn.schedules.CosineDecay(1e-3, epochs)),
                     snn.EarlyStopping(patience=5)])

scores = model.evaluate(X_test, y_test)
print(f"test accuracy {scores['accuracy']:.4f}  test loss {scores['loss']:.4f}")
model.classes = list(CLASS_NAMES)
print("first test images:", model.predict(X_test[:5]).tolist())   # plain str, not np.str_
print("saved", model.save("fashion_mlp.npz"))
