#!/usr/bin/env python3
"""Parity fixture for the FID network: pytorch-fid 0.3.0's own `InceptionV3` (block 3, the 2048
pool features) with its FIDInceptionA/C/E_1/E_2 patches, on torchvision 0.15.1's Inception3, both
sources with the channel widths divided by 16 (one literal substitution applied to both, so the
blocks still fit together) and random weights (BatchNorm statistics gathered on random images) instead of the TF FID
weights (no download). The inner network's state dict (torchvision `Inception3` keys, as the real
`pt_inception-2015-12-05-6726825d.pth`) goes to tests/fixtures/fid_tiny/inception.pt.
expected.safetensors: the pool features [1, 128] of astronaut.png and grace_hopper.jpg, each fed
as pytorch-fid's ImagePathDataset feeds it (`ToTensor` of the whole photo; the model resizes to
299² bilinear and scales to [-1, 1]).

Needs the real data; torch 2.0.0, torchvision 0.15.1, pytorch-fid 0.3.0 (pip download, not
installed), pillow.

    venv/bin/python tests/scripts/gen_fid_inception.py
"""

import os
import re
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image
from safetensors.torch import save_file

assert torch.__version__.startswith("2.0.0") and torchvision.__version__.startswith("0.15.1")
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "fid_tiny"
DATA = Path(os.environ.get("CONSISTENTID_REAL_DATA", Path.home() / ".cache/consistentid/real-data"))
WIDTHS = {w: str(int(w) // 16) for w in
          ("32", "48", "64", "80", "96", "128", "160", "192", "256", "288", "320", "384", "448", "768", "1280", "2048")}


def scale(src):
    return re.sub(r"\b(" + "|".join(WIDTHS) + r")\b", lambda m: WIDTHS[m.group(1)], src)


def modules():
    tv = types.ModuleType("scaled_inception")
    tv.__package__ = "torchvision.models"
    src = (Path(torchvision.__file__).parent / "models" / "inception.py").read_text()
    # (Not registered a second time in torchvision's model registry.)
    exec(compile(scale(src).replace("@register_model()", ""), "inception.py", "exec"), tv.__dict__)
    tmp = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "pytorch-fid==0.3.0", "-d", tmp], check=True)
    wheel = next(Path(tmp).glob("pytorch_fid-0.3.0-*.whl"))
    src = zipfile.ZipFile(wheel).read("pytorch_fid/inception.py").decode()
    src = scale(src).replace("torchvision.models.inception.", "SCALED.")
    src = src.replace("state_dict = load_state_dict_from_url(FID_WEIGHTS_URL, progress=True)", "")
    src = src.replace("inception.load_state_dict(state_dict)", "")
    fid = types.ModuleType("fid_inception")
    fid.SCALED = tv
    exec(compile(src, "pytorch_fid/inception.py", "exec"), fid.__dict__)
    fid._inception_v3 = lambda *a, **k: tv.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    return fid


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    fid = modules()
    torch.manual_seed(8)
    inner = fid.fid_inception_v3()
    fid.fid_inception_v3 = lambda: inner
    model = fid.InceptionV3([fid.InceptionV3.BLOCK_INDEX_BY_DIM[128]])
    # PyTorch's default weights; BatchNorm statistics gathered on random images (train mode,
    # cumulative average), so that activations stay alive through the depth.
    with torch.no_grad():
        for m in inner.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
                m.weight.add_(torch.randn_like(m.weight) * 0.1)
                m.bias.add_(torch.randn_like(m.bias) * 0.1)
        model.train()
        for _ in range(3):
            model(torch.rand(2, 3, 120, 100))
    model.eval()
    torch.save({k: v for k, v in inner.state_dict().items() if not k.startswith("fc.")}, OUT / "inception.pt")
    out = {}
    for photo, file in (("astronaut", "astronaut.png"), ("grace_hopper", "grace_hopper.jpg")):
        x = TF.to_tensor(Image.open(DATA / "images" / file).convert("RGB"))[None]
        with torch.no_grad():
            out[photo] = model(x)[0].reshape(1, -1)
    save_file(out, str(OUT / "expected.safetensors"))
    print({k: (tuple(v.shape), float(v.mean())) for k, v in out.items()})


if __name__ == "__main__":
    main()
