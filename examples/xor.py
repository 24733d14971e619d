"""The tutorials' XOR network, in scratchnn.

2 inputs, 4 sigmoid hidden units, 1 output; binary cross-entropy on the logit;
plain gradient descent (lr 0.1) on the full batch for 10,000 epochs;
standard-normal initial weights and zero biases.

    python examples/xor.py
"""

import numpy as np

import scratchnn as snn

X, y = snn.datasets.xor()

model = snn.Sequential([
    snn.Dense(4, kernel_initializer="standard_normal"),   # z1 = x W1 + b1
    snn.Sigmoid(),                                          # a1 = sigmoid(z1)
    snn.Dense(1, kernel_initializer="standard_normal"),   # logit = a1 W2 + b2
], seed=42)                                                 # sigmoid is fused into the loss

history = model.fit(X, y, loss="binary_cross_entropy", optimizer=snn.SGD(lr=0.1),
                    epochs=10_000, batch_size=None)
for epoch in range(999, 10_000, 1000):
    print(f"epoch {epoch + 1:>6}  loss {history.history['loss'][epoch]:.6f}")

model.summary()
for x, p in zip(X, model.predict_proba(X)[:, 0]):
    print(f"{x.astype(int)} -> {p:.4f}")

# Backpropagation checked against central differences, in float64:
errors = snn.gradcheck(model, X, y)
print("gradient check, largest relative error:", f"{max(errors.values()):.1e}")
assert max(errors.values()) < 1e-6
assert np.array_equal(model.predict(X), y)
