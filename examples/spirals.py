"""Three interleaved spirals: a small ReLU network, its training curves and its
decision boundary (needs matplotlib: pip install 'scratchnn[plots]').

    python examples/spirals.py          # writes spirals_boundary.png, spirals_history.png
"""

import scratchnn as snn
from scratchnn.plots import plot_decision_boundary, plot_history
from scratchnn.preprocessing import StandardScaler, train_test_split

X, y = snn.datasets.spirals(n_samples=600, n_classes=3, noise=0.2, seed=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=True, seed=0)
scaler = StandardScaler().fit(X_train)          # statistics of the training data only
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

model = snn.Sequential([snn.Dense(64, kernel_initializer="he_uniform"), snn.ReLU(),
                        snn.Dense(64, kernel_initializer="he_uniform"), snn.ReLU(),
                        snn.Dense(3)], seed=0)
history = model.fit(X_train, y_train, loss="cross_entropy", optimizer=snn.Adam(lr=0.01),
                    epochs=300, batch_size=32, validation_split=0.2,
                    callbacks=[snn.EarlyStopping(patience=30)])

print(f"epochs run: {len(history.epoch)}")
print(f"test accuracy: {model.evaluate(X_test, y_test)['accuracy']:.3f}")
print(plot_decision_boundary(model, X_test, y_test, "spirals_boundary.png",
                             title="spirals: decision boundary (test set)"))
print(plot_history(history, "spirals_history.png", title="spirals"))
