"""Grad-CAM from the served model's last convolutional activation, in NumPy.

The head is global average pooling -> dense, so the gradient of the pneumonia logit with
respect to the activation A[i, j, k] is w[k] / (H * W) at every position: Grad-CAM's channel
weights need no backward pass and no TensorFlow (see keras-io's Grad-CAM example for the
GradientTape version this reproduces; tests/test_gradcam.py compares the two).
"""

from __future__ import annotations

import cv2
import numpy as np

OVERLAY_MAX_SIDE = 1024
HEATMAP_OPACITY = 0.6


def signed_evidence(activation: np.ndarray, dense_kernel: np.ndarray) -> np.ndarray:
    """(H, W, C) activation and the (C,) logit weights -> (H, W) each position's share of the
    logit, before Grad-CAM's ReLU: negative where the position speaks against the class."""
    height, width, _ = activation.shape
    return activation @ (dense_kernel.reshape(-1) / (height * width))


def gradcam(activation: np.ndarray, dense_kernel: np.ndarray) -> np.ndarray:
    """(H, W, C) activation and the (C,) logit weights -> (H, W) map in [0, 1]."""
    cam = np.maximum(signed_evidence(activation, dense_kernel), 0.0)
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).astype(np.float32)


def overlay_heatmap(gray: np.ndarray, cam: np.ndarray, strength: float) -> np.ndarray:
    """The map upsampled onto the original picture at its own aspect ratio (longest side capped
    at 1024 px so a 3000 px upload does not cost seconds), JET colours, BGR uint8.

    An honest scale: each pixel's colour is blended in with opacity HEATMAP_OPACITY x map value x
    `strength` (the served probability), so where the map is low the X-ray shows through, a
    confident NORMAL shows almost no colour, and a confident PNEUMONIA shows its region clearly.
    The map itself stays normalised to its own peak (where the model looked); the strength says
    how much that look found."""
    height, width = gray.shape
    scale = min(1.0, OVERLAY_MAX_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    base = gray if scale == 1.0 else cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    heat = np.clip(cv2.resize(cam, size, interpolation=cv2.INTER_LINEAR), 0, 1)
    colours = cv2.applyColorMap(np.uint8(heat * 255), cv2.COLORMAP_JET).astype(np.float32)
    alpha = (HEATMAP_OPACITY * float(np.clip(strength, 0, 1)) * heat)[:, :, None]
    picture = cv2.cvtColor(base, cv2.COLOR_GRAY2BGR).astype(np.float32)
    return np.uint8(np.round(picture * (1 - alpha) + colours * alpha))
