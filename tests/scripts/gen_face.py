#!/usr/bin/env python3
"""Reference outputs of insightface's face pipeline on the real public-domain photos, with the
random-weight SCRFD / IResNet replicas of gen_onnx.py standing in for det_10g / w600k_r50.

insightface's own code is used unchanged: `model_zoo/scrfd.py` (letterbox with cv2.resize,
blob, anchors, decoding, NMS), `utils/face_align.py` (`norm_crop`: skimage similarity
transform + cv2.warpAffine) and `model_zoo/arcface_onnx.py`, taken from the insightface 0.7.3
sdist on PyPI (sha256 checked) and run with onnxruntime.

For each photo and channel order it writes tests/fixtures/face/<photo>_<order>.safetensors:
  canvas      u8 [H, W, 3]  the letterboxed detector input (channels as handed to insightface)
  boxes       [N, 4], scores [N], landmarks [N, 5, 2]   SCRFD.detect
  aligned     u8 [112, 112, 3]  norm_crop of faces[0] in the order ArcFace sees (after swapRB)
  embedding, normed_embedding [1, D]   ArcFaceONNX.get on faces[0]
`official` hands insightface the RGB array (as the ConsistentID SD1.5 pipeline does), `corrected`
the BGR one. <photo>_refcrop.safetensors holds norm_crop at the reference landmarks of
shared/spec/real-data.md (RGB, `aligned` u8), an OpenCV-only check of the warp.

Needs the real data (tests/scripts/fetch_real_data.sh) and: torch 2.0.0, onnxruntime 1.16.3,
opencv-python-headless 4.8.1.78, scikit-image 0.22.0, numpy 1.24.3, pillow.

    venv/bin/python tests/scripts/gen_face.py
"""

import hashlib
import io
import os
import sys
import tarfile
import types
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image
from safetensors.numpy import save_file

assert ort.__version__ == "1.16.3" and cv2.__version__ == "4.8.1"

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fixtures" / "face"
ONNX = ROOT / "fixtures" / "onnx"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
SDIST = ("https://files.pythonhosted.org/packages/0b/8d/0f4af90999ca96cf8cb846eb5ae27c5ef5b390f9c090dd19e4fa76364c13/"
         "insightface-0.7.3.tar.gz", "f191f719612ebb37018f41936814500544cd0f86e6fcd676c023f354c668ddf7")
DET_SIZE = (160, 128)  # (width, height) as insightface's det_size
REF_LANDMARKS = {
    "astronaut": [[204, 100], [247, 103], [224, 129], [201, 139], [245, 142]],
    "grace_hopper": [[224, 193], [310, 188], [271, 238], [234, 279], [306, 274]],
}


def insightface_modules():
    cache = Path.home() / ".cache/consistentid/insightface-0.7.3.tar.gz"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(urllib.request.urlopen(SDIST[0]).read())
    data = cache.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SDIST[1], "insightface sdist hash mismatch"
    tar = tarfile.open(fileobj=io.BytesIO(data))
    pkg = types.ModuleType("insightface"); pkg.__path__ = []
    sys.modules["insightface"] = pkg
    mods = {}
    for sub in ("utils", "model_zoo"):
        m = types.ModuleType(f"insightface.{sub}"); m.__path__ = []
        sys.modules[f"insightface.{sub}"] = m
        setattr(pkg, sub, m)
    for name in ("utils/face_align", "model_zoo/scrfd", "model_zoo/arcface_onnx"):
        src = tar.extractfile(f"insightface-0.7.3/insightface/{name}.py").read().decode()
        full = "insightface." + name.replace("/", ".")
        mod = types.ModuleType(full)
        mod.__package__ = full.rsplit(".", 1)[0]
        sys.modules[full] = mod
        setattr(sys.modules[mod.__package__], name.split("/")[1], mod)
        exec(compile(src, full, "exec"), mod.__dict__)
        mods[name.split("/")[1]] = mod
    return mods


def main():
    mods = insightface_modules()
    OUT.mkdir(parents=True, exist_ok=True)
    det = mods["scrfd"].SCRFD(model_file=str(ONNX / "scrfd_tiny_det.onnx"))
    det.prepare(-1, input_size=DET_SIZE)
    rec = mods["arcface_onnx"].ArcFaceONNX(model_file=str(ONNX / "iresnet50_tiny.onnx"))
    rec.prepare(-1)
    for photo, file in (("astronaut", "astronaut.png"), ("grace_hopper", "grace_hopper.jpg")):
        rgb = np.array(Image.open(DATA / "images" / file).convert("RGB"))
        for order, img in (("official", rgb), ("corrected", np.ascontiguousarray(rgb[:, :, ::-1]))):
            boxes, kpss = det.detect(img, input_size=DET_SIZE)
            assert len(boxes) > 0, f"replica found nothing on {photo}"
            # The letterbox exactly as SCRFD.detect builds it.
            h, w = img.shape[:2]
            ratio = h / w
            if ratio > DET_SIZE[1] / DET_SIZE[0]:
                nh = DET_SIZE[1]; nw = int(nh / ratio)
            else:
                nw = DET_SIZE[0]; nh = int(nw * ratio)
            canvas = np.zeros((DET_SIZE[1], DET_SIZE[0], 3), np.uint8)
            canvas[:nh, :nw] = cv2.resize(img, (nw, nh))
            aimg = mods["face_align"].norm_crop(img, landmark=kpss[0], image_size=112)
            face = types.SimpleNamespace(kps=kpss[0])
            emb = rec.get(img, face)
            save_file({
                "canvas": canvas,
                "boxes": boxes[:, :4].astype(np.float32),
                "scores": boxes[:, 4].astype(np.float32),
                "landmarks": kpss.astype(np.float32),
                "aligned": np.ascontiguousarray(aimg[:, :, ::-1]),  # after blobFromImages' swapRB
                "embedding": emb.astype(np.float32)[None],
                "normed_embedding": (emb / np.linalg.norm(emb)).astype(np.float32)[None],
            }, str(OUT / f"{photo}_{order}.safetensors"))
            print(photo, order, len(boxes), "faces; top score", boxes[0, 4])
        lmk = np.array(REF_LANDMARKS[photo], np.float32)
        save_file({"landmarks": lmk, "aligned": mods["face_align"].norm_crop(rgb, landmark=lmk, image_size=112)},
                  str(OUT / f"{photo}_refcrop.safetensors"))


if __name__ == "__main__":
    main()
