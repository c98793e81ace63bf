"""Sharpness-aware minimisation (Foret et al., ICLR 2021) around a Keras model, for fine-tuning.

Each step first climbs to the worst weights within an L2 ball of radius `rho` (one gradient step,
scaled to the ball) and applies the gradient taken there to the original weights: flat minima,
which transfer better to another collection (SWAD, NeurIPS 2021, pairs it with weight averaging).
It costs a second forward and backward pass per batch. Keras has no SAM, hence these few lines.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class SharpnessAware(keras.Model):
    """Trains `inner`'s own variables with SAM; `inner` is what is saved and served."""

    def __init__(self, inner: keras.Model, rho: float) -> None:
        super().__init__()
        self.inner = inner
        self.rho = rho

    def call(self, x, training: bool = False):
        return self.inner(x, training=training)

    def _loss(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        return y_pred, self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        weights = self.trainable_weights
        with tf.GradientTape() as tape:
            y_pred, loss = self._loss(x, y, sample_weight)
        gradients = tape.gradient(loss, weights)
        scale = self.rho / (tf.linalg.global_norm(gradients) + 1e-12)
        steps = [g * scale for g in gradients]
        for weight, step in zip(weights, steps, strict=True):
            weight.assign_add(step)
        with tf.GradientTape() as tape:
            _, sharp_loss = self._loss(x, y, sample_weight)
        sharp_gradients = tape.gradient(sharp_loss, weights)
        for weight, step in zip(weights, steps, strict=True):
            weight.assign_sub(step)
        self.optimizer.apply_gradients(zip(sharp_gradients, weights, strict=True))
        # the loss shown is the one at the weights themselves, tracked as Keras's own train_step does
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
