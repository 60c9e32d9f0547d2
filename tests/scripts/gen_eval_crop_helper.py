"""The official evaluation helpers' `crop_image` (evaluation/eval_function.py:12-28 of
JackAILab/ConsistentID e234008, restated), shared by gen_eval_crop.py and gen_fgis.py."""

import numpy as np


def crop_image(image_pil, threshold=10):
    gray_array = np.array(image_pil.convert("L"))
    non_black_indices = np.where(gray_array > threshold)
    top = np.min(non_black_indices[0])
    bottom = np.max(non_black_indices[0])
    left = np.min(non_black_indices[1])
    right = np.max(non_black_indices[1])
    return image_pil.crop((left, top, right, bottom))
