"""Drives `consistentid serve` with the official `replicate` Python client (pinned in
requirements-client.txt), pointed at the host with its base URL setting.

Usage: replicate_client_check.py BASE_URL FACE.png ID_EMBEDDING.json
Prints one line per check and `ok` at the end; any failure raises.
"""

import json
import sys
import time
import urllib.request

import replicate

base, face_path, embedding_path = sys.argv[1:4]
embedding = json.load(open(embedding_path))
client = replicate.Client(api_token="replicate-client-token", base_url=base)
small = {
    "prompt": "a portrait, oil painting",
    "id_embedding": embedding,
    "num_inference_steps": 2,
    "start_merge_step": 0,
    "width": 32,
    "height": 32,
    "seed": 11,
}

# run(): the face as a file handle (uploaded through the files API), `Prefer: wait`.
with open(face_path, "rb") as face:
    output = client.run("consistentid/consistentid", input={**small, "face_image": face})
assert isinstance(output, list) and len(output) == 1, output
url = str(output[0])
assert url.startswith(base), url
png = urllib.request.urlopen(url).read()
assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:8]
assert b"parameters" in png
print("run: PNG of", len(png), "bytes from", url)

# files.create, predictions.create / get / list / cancel.
with open(face_path, "rb") as face:
    uploaded = client.files.create(face)
assert uploaded.urls["get"].startswith(base)
print("files.create:", uploaded.id)
long = {**small, "num_inference_steps": 1000, "face_image": uploaded.urls["get"]}
prediction = client.predictions.create(version="v1", input=long)
assert prediction.status in ("starting", "processing"), prediction.status
assert prediction.urls["stream"].endswith("/events")
got = client.predictions.get(prediction.id)
assert got.id == prediction.id and got.input["seed"] == 11, got
listed = client.predictions.list()
ids = [p.id for p in listed.results]
assert prediction.id in ids, ids
print("predictions.create/get/list:", prediction.id, "in", len(ids))
client.predictions.cancel(prediction.id)
deadline = time.time() + 120
while True:
    prediction.reload()
    if prediction.status in ("succeeded", "failed", "canceled"):
        break
    assert time.time() < deadline, prediction.status
    time.sleep(0.2)
assert prediction.status == "canceled", prediction.status
print("predictions.cancel:", prediction.status)

# A failing input raises the client's own error type.
try:
    client.predictions.create(version="v1", input={"prompt": "x"})
    raise AssertionError("a prediction without a face was accepted")
except replicate.exceptions.ReplicateError as e:
    assert e.status == 422, e
    print("422:", e.detail)
print("ok")
