#!/usr/bin/env python3
"""Reference for `consistentid dataset build`: the OFFICIAL FGID scripts (`data/FGID_mask.py`,
`data/FGID_faceid_embeds.py`, `data/FGID_fuse_JSON.py`, imported from a checkout of
JackAILab/ConsistentID e234008) run on three photos, with replicas standing in for the networks:

- BiSeNet: the checkout's own `models/BiSeNet/{model,resnet}.py` at the widths of
  tests/fixtures/bisenet_tiny (the same literal substitution as gen_bisenet.py), loading its
  `face_parsing.pth`; `.cuda()` made a no-op and the ResNet's ImageNet download skipped (T-patches
  for running on a CPU offline);
- buffalo_l: insightface 0.7.3's own `SCRFD` and `ArcFaceONNX` (from its sdist, as gen_face.py)
  on tests/fixtures/onnx/scrfd_tiny_det.onnx and iresnet_tiny_512.onnx, behind a stand-in for
  `insightface.app.FaceAnalysis` that does what its `get` does (detect with max_num 0, then the
  recogniser on each face), `prepare(det_size=(640, 640))` as the script;
- the captioner (`FGID_caption.py`, LLaVA): replaced by tests/fixtures/dataset_build/captions.json,
  written into each record's JSON as that script writes its answers.

The photos (in FGID_Origin/people/): the real astronaut.png; grace_hopper.png (Pillow's decode
of the real grace_hopper.jpg, tests/fixtures/jpeg/grace_hopper.png, since the official scripts
only handle .png names); plain.png, a 96×64 gradient without a face.

Writes tests/fixtures/dataset_build/expected.json: the merged JSON_all.json records and, per
photo, the SHA-256 of the decoded pixels of `_resize.png`, `_mask.png`, `_color.png` and the
label counts; expected.safetensors: each `_faceid.bin` found (`<stem>.id_resize`,
`<stem>.id_origin`, [1, 512]).

Needs the real data (tests/scripts/fetch_real_data.sh), OFFICIAL_DIR = the checkout, and torch
2.0.0, torchvision 0.15.1, onnxruntime 1.16.3, opencv-python-headless 4.8.1.78,
scikit-image 0.22.0, numpy 1.24.3, pillow 10.0.1, safetensors 0.4.1, tqdm.

    OFFICIAL_DIR=… venv/bin/python tests/scripts/gen_dataset_build.py
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_face import insightface_modules  # noqa: E402  (insightface 0.7.3's own modules)

assert torch.__version__.startswith("2.0.0") and cv2.__version__ == "4.8.1"
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fixtures" / "dataset_build"
ONNX = ROOT / "fixtures" / "onnx"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
OFFICIAL = Path(os.environ["OFFICIAL_DIR"])


def official_source(rel):
    return (OFFICIAL / rel).read_text()


def official_bisenet():
    """models.BiSeNet.{resnet,model} from the checkout, at bisenet_tiny's widths."""
    for name in ("models", "models.BiSeNet"):
        m = types.ModuleType(name); m.__path__ = []
        sys.modules[name] = m
    mods = {}
    for name in ("resnet", "model"):
        src = official_source(f"models/BiSeNet/{name}.py")
        for big, small in (("512", "64"), ("256", "32"), ("128", "16"), ("64", "8")):
            src = src.replace(big, small)
        full = f"models.BiSeNet.{name}"
        mod = types.ModuleType(full); mod.__package__ = "models.BiSeNet"
        sys.modules[full] = mod
        setattr(sys.modules["models.BiSeNet"], name, mod)
        exec(compile(src, full, "exec"), mod.__dict__)
        mods[name] = mod
    mods["resnet"].Resnet18.init_weight = lambda self: None  # T: no ImageNet download
    return mods


class FaceAnalysis:
    """insightface.app.FaceAnalysis with the replica graphs; `get` as insightface 0.7.3's."""

    def __init__(self, name=None, providers=None, **kwargs):
        mods = INSIGHTFACE
        self.det = mods["scrfd"].SCRFD(model_file=str(ONNX / "scrfd_tiny_det.onnx"))
        self.rec = mods["arcface_onnx"].ArcFaceONNX(model_file=str(ONNX / "iresnet_tiny_512.onnx"))

    def prepare(self, ctx_id, det_thresh=0.5, det_size=(640, 640)):
        self.det.prepare(-1, input_thresh=det_thresh, input_size=det_size)
        self.rec.prepare(-1)

    def get(self, img, max_num=0):
        bboxes, kpss = self.det.detect(img, max_num=max_num, metric="default")
        faces = []
        for i in range(bboxes.shape[0]):
            face = types.SimpleNamespace(bbox=bboxes[i, 0:4], kps=kpss[i], det_score=bboxes[i, 4])
            emb = self.rec.get(img, face)
            face.embedding = emb
            face.normed_embedding = emb / np.linalg.norm(emb)
            faces.append(face)
        return faces


def run_script(rel, work, call=None):
    mod = types.ModuleType(Path(rel).stem)
    mod.__dict__["__name__"] = Path(rel).stem
    cwd = os.getcwd()
    os.chdir(work)
    try:
        exec(compile(official_source(rel), rel, "exec"), mod.__dict__)
        if call:
            call(mod)
    finally:
        os.chdir(cwd)
    return mod


def main():
    torch.nn.Module.cuda = lambda self, *a, **k: self  # T: CPU
    torch.Tensor.cuda = lambda self, *a, **k: self
    official_bisenet()
    global INSIGHTFACE
    INSIGHTFACE = insightface_modules()
    app = types.ModuleType("insightface.app"); app.FaceAnalysis = FaceAnalysis
    sys.modules["insightface.app"] = app
    setattr(sys.modules["insightface"], "app", app)

    work = Path(tempfile.mkdtemp())
    origin = work / "FGID_Origin" / "people"
    origin.mkdir(parents=True)
    shutil.copy(DATA / "images" / "astronaut.png", origin / "astronaut.png")
    shutil.copy(ROOT / "fixtures" / "jpeg" / "grace_hopper.png", origin / "grace_hopper.png")
    y, x = np.mgrid[0:64, 0:96]
    plain = np.stack([x * 2, y * 3, (x + y)], -1).astype(np.uint8)
    Image.fromarray(plain).save(origin / "plain.png")

    # 1. FGID_mask.py
    run_script("data/FGID_mask.py", work, lambda m: m.evaluate(
        respth="./FGID_parsing_mask", color_respth="./FGID_parsing_color", resize_dspth="./FGID_resize",
        dspth="./FGID_Origin", jp="./FGID_JSON", cp=str(ROOT / "fixtures/bisenet_tiny/face_parsing.pth")))
    # 2. FGID_caption.py's writes, with the fixed captions
    captions = json.loads((OUT / "captions.json").read_text())
    for rel, c in captions.items():
        path = work / "FGID_JSON" / (os.path.splitext(rel)[0] + ".json")
        data = json.loads(path.read_text())
        data["vqa_llva"] = c["vqa_llva"]
        data["vqa_llva_more_face_detail"] = c["vqa_llva_more_face_detail"]
        path.write_text(json.dumps(data))
    # 3. FGID_faceid_embeds.py
    run_script("data/FGID_faceid_embeds.py", work, lambda m: m.process_faceid(
        origin_path="./FGID_Origin", resize_path="./FGID_resize", faceid_path="./FGID_faceID",
        json_path="./FGID_JSON"))
    # 4. FGID_fuse_JSON.py
    run_script("data/FGID_fuse_JSON.py", work)

    records = sorted(json.loads((work / "JSON_all.json").read_text()), key=lambda r: r["origin_IMG"])
    photos, tensors = {}, {}
    sha = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
    for r in records:
        stem = Path(r["origin_IMG"]).stem
        resized = np.array(Image.open(work / "FGID_resize" / r["resize_IMG"]).convert("RGB"))
        labels = cv2.imread(str(work / "FGID_parsing_mask" / r["parsing_mask_IMG"]), cv2.IMREAD_UNCHANGED)
        color = np.array(Image.open(work / "FGID_parsing_color" / r["parsing_color_IMG"]).convert("RGB"))
        assert labels.shape == (512, 512) and labels.dtype == np.uint8
        photos[stem] = {"resize": sha(resized), "mask": sha(labels), "color": sha(color),
                        "label_counts": np.bincount(labels.ravel(), minlength=19).tolist()}
        for key, name in (("id_embed_file_resize", "id_resize"), ("id_embed_file_origin", "id_origin")):
            if key in r:
                t = torch.load(work / "FGID_faceID" / r[key])
                assert tuple(t.shape) == (1, 512) and t.dtype == torch.float32
                tensors[f"{stem}.{name}"] = t.numpy()
        print(stem, photos[stem]["label_counts"], sorted(k for k in r if k.startswith("id_")))
    (OUT / "expected.json").write_text(json.dumps({"records": records, "photos": photos}, indent=1) + "\n")
    save_file(tensors, str(OUT / "expected.safetensors"))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
