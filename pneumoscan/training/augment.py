"""X-ray-appropriate augmentation of 224x224 grayscale pixels, before `to_model_input`.

Small rotations, shifts and zoom (patients are not always centred or straight), brightness,
contrast and gamma (exposure varies between machines), with some chance one of the
corruption families of `corruptions.py` (how images arrive over telemedicine), and with some
chance burned-in text like the scanners' own: a clock time, a kV code, a side letter. In the
training folder such text sits on 13% of pneumonia images and 5% of normal ones, and on the
external set the normals that carry it score as pneumonia; stamped on views of both classes
alike, text stops standing in for a finding. No horizontal flip: the heart sits on the left,
and a mirrored chest is not a chest the model will be shown.
"""

from __future__ import annotations

import cv2
import numpy as np

from pneumoscan.training.corruptions import Corruption, family_set

MAX_ROTATION_DEG = 8.0
MAX_SHIFT = 0.06
ZOOM_RANGE = (0.92, 1.12)
BRIGHTNESS = 0.08
CONTRAST_RANGE = (0.85, 1.15)
GAMMA_RANGE = (0.8, 1.25)
CORRUPTIONS = family_set("telemedicine")


def burned_in_text(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One to three marks as X-ray machines print them: a clock time in a top corner, a kV code in
    a bottom corner, a side letter near an edge; white, small, at random places within those bands."""
    view = gray.copy()
    size = gray.shape[0]
    marks = [
        (f"{rng.integers(24):02d}:{rng.integers(60):02d}:{rng.integers(60):02d}", "top"),
        (f"KV{rng.integers(40, 100)}", "bottom"),
        (str(rng.choice(["R", "L"])), "side"),
    ]
    for index in rng.choice(len(marks), size=rng.integers(1, len(marks) + 1), replace=False):
        text, band = marks[index]
        font = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN)[rng.integers(2)]
        scale = rng.uniform(0.3, 0.5) if band != "side" else rng.uniform(0.6, 1.2)
        (width, height), _ = cv2.getTextSize(text, font, scale, 1)
        left_edge = rng.random() < 0.5
        x = int(rng.integers(2, 12)) if left_edge else size - width - int(rng.integers(2, 12))
        if band == "top":
            y = height + int(rng.integers(2, 10))
        elif band == "bottom":
            y = size - int(rng.integers(2, 10))
        else:
            y = int(rng.integers(height + 10, size // 3))
        colour = int(rng.integers(190, 256))
        cv2.putText(view, text, (max(x, 0), y), font, scale, colour, 1, cv2.LINE_AA)
    return view


def augment(
    gray: np.ndarray,
    rng: np.random.Generator,
    corruption: float = 0.0,
    text: float = 0.0,
    photometric: float = 1.0,
    families: tuple[Corruption, ...] = CORRUPTIONS,
    geometric: float = 1.0,
) -> np.ndarray:
    """One random view of `gray` (uint8, square), same shape and dtype; with chance `corruption`
    one of `families`, chosen at random, is applied on top, with chance `text` burned-in text
    (no random draw is spent on it when `text` is 0, so earlier seeds give their earlier views).
    `photometric` widens the gamma (as a power), contrast and brightness ranges (1 = as above),
    so that global exposure, which differs between sites, weighs less (at 2 external AUC did not
    change: the README's evidence table). `geometric` widens the rotation, zoom (as a power) and
    shift ranges (1 = as above), for chests framed and sized otherwise than the training folder's."""
    size = gray.shape[0]
    rotation = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG) * geometric
    zoom = rng.uniform(*ZOOM_RANGE) ** geometric
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rotation, zoom)
    matrix[:, 2] += rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * size * geometric
    moved = cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    pixels = moved.astype(np.float32) / 255.0
    gamma = rng.uniform(*GAMMA_RANGE) ** photometric
    contrast = 1.0 + (rng.uniform(*CONTRAST_RANGE) - 1.0) * photometric
    pixels = np.power(pixels, gamma)
    mean = pixels.mean()
    pixels = (pixels - mean) * contrast + mean + rng.uniform(-BRIGHTNESS, BRIGHTNESS) * photometric
    view = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < corruption:
        view = families[rng.integers(len(families))](view, rng)
    if text and rng.random() < text:
        view = burned_in_text(view, rng)
    return view
