#!/usr/bin/env python3
"""Writes the fuzz seeds that are not files clpar-train wrote itself (those are
corpus/safetensors/{mlp,gpt,checkpoint}: --save and --checkpoint of tiny runs):
a GPT file with nanoGPT's extra lm_head.weight, IDX files plain and gzipped, text, specs
and command lines. Run from fuzz/."""
import gzip, json, struct

def safetensors(tensors, meta):
    header, data = {"__metadata__": meta}, b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data

def put(path, data):
    open(path, "wb").write(data if isinstance(data, bytes) else data.encode())

b = open("corpus/safetensors/gpt", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
tensors = {}
for k, v in h.items():
    if k == "__metadata__":
        continue
    s, e = v["data_offsets"]
    tensors[k] = (v["shape"], struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e]))
tensors["lm_head.weight"] = tensors["transformer.wte.weight"]
put("corpus/safetensors/gpt_lm_head", safetensors(tensors, h["__metadata__"]))

# IDX: two bytes of cut (the images file's length), one 28x28 image, one label
images = struct.pack(">IIII", 0x803, 1, 28, 28) + bytes(range(256)) * 3 + bytes(16)
labels = struct.pack(">II", 0x801, 1) + bytes([7])
put("corpus/idx/plain", struct.pack(">H", len(images)) + images + labels)
gz_images, gz_labels = gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)
put("corpus/idx/gzip", struct.pack(">H", len(gz_images)) + gz_images + gz_labels)

put("corpus/text/short", b"\x04" + b"To be, or not to be, that is the question.\n" * 4)

specs = {"mlp": "\x00784,256,128,10", "gpt": "\x00gpt:layers=2,heads=2,embd=16,ctx=8,vocab=256",
         "devices": "\x010,2", "cpu": "\x01cpu", "all": "\x01all",
         "gemm": "\x02K\tdirect WGD=16 MDIMCD=4 NDIMCD=4 MDIMAD=4 NDIMBD=4 KWID=2 VWMD=2 VWND=2 PADA=1 PADB=1\n",
         "measure": "\x03X\t1 2 3\nK\t9.4452 6.7356 2.0802\n"}
for name, text in specs.items():
    put("corpus/specs/" + name, text)

cli = {"mesh": ["--dp", "2", "--pp", "2", "--tp", "2", "--micro-batches", "4", "--stages", "1,2"],
       "optim": ["--optim", "adamw", "--lr", "3e-4", "--weight-decay", "0.1", "--clip", "1.0",
                 "--warmup", "10", "--lr-min", "1e-5"],
       "model": ["--model", "gpt:layers=2,heads=2,embd=16,ctx=8", "--batch", "8", "--steps", "100"]}
for name, words in cli.items():
    put("corpus/cli/" + name, "\0".join(words).encode())
