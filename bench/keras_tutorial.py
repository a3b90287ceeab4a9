"""The tutorial's own Keras recipe, timed end to end (image loading + 16 epochs of fit with
validation every epoch), on the same files `train` uses. Weights are not needed for timing
(VGG16(weights=None) runs the same arithmetic), so this needs no download.

usage: keras_tutorial.py TRAIN_MANIFEST VAL_MANIFEST   (manifest.csv files written by preprocess)
prints: keras_seconds=<wall time>
"""
import csv
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
start = time.perf_counter()
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from tensorflow.keras import layers, models, optimizers  # noqa: E402
from tensorflow.keras.applications import VGG16  # noqa: E402


def load(manifest):
    images, labels = [], []
    with open(manifest) as f:
        for row in csv.DictReader(f):
            img = cv2.imread(row["path"])          # BGR, as the tutorial
            b, g, r = cv2.split(img)
            img = cv2.merge([r, g, b])             # the tutorial's channel swap
            images.append(cv2.resize(img, (50, 50)))
            labels.append(int(row["label"]))
    x = np.array(images, dtype="float32")          # raw 0-255, as the tutorial
    y = np.eye(2, dtype="float32")[labels]
    return x, y


x_train, y_train = load(sys.argv[1])
x_val, y_val = load(sys.argv[2])
base = VGG16(weights=None, include_top=False, input_shape=(50, 50, 3))
base.trainable = False
model = models.Sequential([base, layers.Flatten(), layers.Dense(256, activation="relu"),
                           layers.Dropout(0.5), layers.Dense(2, activation="softmax")])
model.compile(optimizer=optimizers.SGD(learning_rate=1e-4, momentum=0.9),
              loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=100, epochs=16, validation_data=(x_val, y_val), verbose=0)
print(f"keras_images={len(x_train) + len(x_val)}")
print(f"keras_seconds={time.perf_counter() - start:.2f}")
