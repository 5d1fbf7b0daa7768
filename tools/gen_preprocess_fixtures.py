#!/usr/bin/python3
"""Generate the PIL/torchvision reference fixtures for package preprocess.

Run with Debian's python3 (python3-pil, python3-numpy, python3-torchvision):

    /usr/bin/python3 tools/gen_preprocess_fixtures.py [--full DIR]

It writes into preprocess/testdata/pil/:
  * small synthetic PNG inputs (odd sizes, RGB, RGBA, LA, gray, palette with
    tRNS, 16-bit RGB) and one crop of skimage's chelsea.png;
  * for every (input, spec) pair: the uint8 image after torchvision's Resize
    (which for PIL images is PIL's own Image.resize(BILINEAR)), and the final
    normalized tensor made by the real torchvision transforms
    (Resize, CenterCrop, ToTensor, Normalize), stored NHWC. Big results are
    stored as sha256 + sampled values to keep testdata small;
  * digests (sha256, per-channel sums, sampled values) of the ImageNet
    transform of the four real skimage photos in /work/shared/data;
  * PIL's CMYK->RGB conversion of a formula-made CMYK image and PIL's
    decode of two small JPEGs (to check the YCbCr->RGB conversion).

Every image goes through img.convert("RGB") (or "L" for 1-channel specs)
first, as torchvision's ImageFolder loader does. The "caffe_bgr" spec has no
torchvision equivalent (Scale 1, BGR): it uses torchvision Resize and
CenterCrop, then numpy float32 arithmetic (x*1 - mean)/std.

--full DIR additionally writes the full NHWC tensors of the real photos
(~600 KB each, not committed) so that TestRealPhotosFull can measure the
exact max |diff| (set PREPROCESS_FULL_DIR=DIR).
"""

import argparse
import hashlib
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

try:
    import torch
    import torchvision
    import torchvision.transforms as T
except ImportError:  # the brief allows PIL-only; we insist on the real thing
    sys.exit("torchvision is required (apt install python3-torchvision)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "preprocess", "testdata", "pil")
SKIMAGE = "/work/shared/data/images/skimage"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

SPECS = {
    "imagenet": dict(resize=256, height=224, width=224, channels=3, scale=1 / 255,
                     mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "direct32": dict(resize=0, height=32, width=32, channels=3, scale=1 / 255,
                     mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "gray28": dict(resize=0, height=28, width=28, channels=1, scale=1 / 255,
                   mean=[0.2860], std=[0.3530]),
    "gray28crop": dict(resize=32, height=28, width=28, channels=1, scale=1 / 255,
                       mean=[0.2860], std=[0.3530]),
    "crop200x300": dict(resize=224, height=200, width=300, channels=3, scale=1 / 255,
                        mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "caffe_bgr": dict(resize=40, height=32, width=32, channels=3, scale=1.0, bgr=True,
                      mean=[103.939, 116.779, 123.68], std=[1.0, 1.0, 1.0]),
}

SMALL_TENSOR = 32 * 32 * 3  # store full .npy up to this many values
SMALL_IMAGE = 64 * 64       # store the resized PNG up to this many pixels
NSAMPLES = 64        # per synthetic case (the sha256 already proves exactness)
PHOTO_SAMPLES = 300  # per real photo


def f32list(xs):
    """The float32 values torch uses, written exactly (as float64 text)."""
    return [float(np.float32(x)) for x in xs]


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def write_png16_rgb(path, arr16):
    """Minimal 16-bit RGB PNG writer (PIL cannot write 16-bit RGB)."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def make_inputs(rng):
    os.makedirs(OUT, exist_ok=True)
    names = []

    def save(name, im, **kw):
        im.save(os.path.join(OUT, name), **kw)
        names.append(name)

    save("noise_37x23.png", Image.fromarray(rng.integers(0, 256, (23, 37, 3), dtype=np.uint8), "RGB"))

    y, x = np.mgrid[0:300, 0:5]
    g = np.stack([y * 255 // 299, x * 60, (y * 7 + x * 50) % 256], -1)
    g = np.clip(g + rng.integers(-8, 9, g.shape), 0, 255).astype(np.uint8)
    save("grad_5x300.png", Image.fromarray(g, "RGB"))

    rgba = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
    rgba[..., 3] = (np.arange(40)[None, :] * 255 // 39).astype(np.uint8)  # 0..255
    rgba[:3, :, 3] = 0  # fully transparent rows keep their colour in PIL
    save("rgba_40x30.png", Image.fromarray(rgba, "RGBA"))

    gy, gx = np.mgrid[0:17, 0:33]
    gray = np.clip(gx * 7 + gy * 3 + rng.integers(-20, 21, gx.shape), 0, 255).astype(np.uint8)
    save("gray_33x17.png", Image.fromarray(gray, "L"))

    la = rng.integers(0, 256, (13, 19, 2), dtype=np.uint8)
    save("la_19x13.png", Image.fromarray(la, "LA"))

    pal = Image.fromarray(rng.integers(0, 16, (19, 21), dtype=np.uint8), "P")
    pal.putpalette(rng.integers(0, 256, 16 * 3, dtype=np.uint8).tolist())
    save("pal_21x19.png", pal, transparency=3)

    a16 = rng.integers(0, 65536, (7, 9, 3), dtype=np.uint16)
    write_png16_rgb(os.path.join(OUT, "rgb16_9x7.png"), a16)
    names.append("rgb16_9x7.png")

    save("noise_32x48.png", Image.fromarray(rng.integers(0, 256, (48, 32, 3), dtype=np.uint8), "RGB"))
    save("tiny_3x2.png", Image.fromarray(rng.integers(0, 256, (2, 3, 3), dtype=np.uint8), "RGB"))

    chelsea = os.path.join(SKIMAGE, "chelsea.png")
    Image.open(chelsea).convert("RGB").crop((200, 100, 264, 148)).save(os.path.join(OUT, "chelsea_crop_64x48.png"))
    names.append("chelsea_crop_64x48.png")
    return names


def torchvision_case(im, spec):
    """Return (resized uint8 array, NHWC float32 tensor) via torchvision."""
    mode = "L" if spec["channels"] == 1 else "RGB"
    im = im.convert(mode)
    H, W = spec["height"], spec["width"]
    interp = T.InterpolationMode.BILINEAR
    if spec["resize"]:
        resize = T.Resize(spec["resize"], interpolation=interp)
    else:
        resize = T.Resize((H, W), interpolation=interp)
    resized = resize(im)
    cropped = T.CenterCrop((H, W))(resized) if spec["resize"] else resized
    if spec.get("bgr") or spec["scale"] != 1 / 255:
        # No torchvision transform for this; numpy float32 as documented.
        x = np.asarray(cropped, dtype=np.float32)
        if x.ndim == 2:
            x = x[..., None]
        if spec.get("bgr"):
            x = x[..., ::-1]
        mean = np.array(spec["mean"], dtype=np.float32)
        std = np.array(spec["std"], dtype=np.float32)
        t = (x * np.float32(spec["scale"]) - mean) / std
    else:
        tt = T.Normalize(spec["mean"], spec["std"])(T.ToTensor()(cropped))
        t = tt.permute(1, 2, 0).contiguous().numpy()
    return np.asarray(resized), np.ascontiguousarray(t, dtype=np.float32)


def digest(t, rng, nsamples=NSAMPLES):
    flat = t.reshape(-1)
    n = min(nsamples, flat.size)
    idx = np.sort(rng.choice(flat.size, n, replace=False))
    return {
        "tensor_shape": list(t.shape),
        "tensor_sha256": sha(t.astype("<f4")),
        "channel_sums": [float(s) for s in t.astype(np.float64).reshape(-1, t.shape[-1]).sum(0)],
        "sample_index": [int(i) for i in idx],
        "sample_value": [float(flat[i]) for i in idx],
    }


def spec_json(spec):
    d = dict(spec)
    d["mean"] = f32list(spec["mean"])
    d["std"] = f32list(spec["std"])
    d["scale"] = float(np.float32(spec["scale"]))
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", help="also write full real-photo tensors here")
    args = ap.parse_args()

    rng = np.random.default_rng(20240229)
    inputs = make_inputs(rng)
    cases = []
    for name in inputs:
        for sname, spec in SPECS.items():
            im = Image.open(os.path.join(OUT, name))
            resized, t = torchvision_case(im, spec)
            case = {"name": f"{name[:-4]}__{sname}", "input": name, "spec": sname,
                    "resized_size": [resized.shape[1], resized.shape[0]],
                    "resized_sha256": sha(resized)}
            if resized.shape[0] * resized.shape[1] <= SMALL_IMAGE:
                fn = case["name"] + "_resized.png"
                Image.fromarray(resized).save(os.path.join(OUT, fn))
                case["resized_png"] = fn
            if t.size <= SMALL_TENSOR:
                fn = case["name"] + ".npy"
                np.save(os.path.join(OUT, fn), t.astype("<f4"))
                case["tensor_npy"] = fn
            case.update(digest(t, rng))
            cases.append(case)

    photos = []
    for fn in sorted(os.listdir(SKIMAGE)):
        im = Image.open(os.path.join(SKIMAGE, fn))
        resized, t = torchvision_case(im, SPECS["imagenet"])
        d = {"file": fn, "spec": "imagenet", "resized_size": [resized.shape[1], resized.shape[0]],
             "resized_sha256": sha(resized)}
        flat = resized.reshape(-1)
        ridx = np.sort(rng.choice(flat.size, PHOTO_SAMPLES, replace=False))
        d["resized_sample_index"] = [int(i) for i in ridx]
        d["resized_sample_value"] = [int(flat[i]) for i in ridx]
        d.update(digest(t, rng, PHOTO_SAMPLES))
        photos.append(d)
        if args.full:
            os.makedirs(args.full, exist_ok=True)
            base = os.path.splitext(fn)[0]
            np.save(os.path.join(args.full, base + "_imagenet.npy"), t.astype("<f4"))
            Image.fromarray(resized).save(os.path.join(args.full, base + "_resized.png"))

    # CMYK: the Go test builds the same CMYK pixels from this formula.
    cy, cx = np.mgrid[0:64, 0:64]
    cmyk = np.stack([(cx * 4 + cy) % 256, (cy * 4 + 3 * cx) % 256, (cx * cy) % 256,
                     (cy * 4 + cx * 13) % 256], -1).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").convert("RGB").save(os.path.join(OUT, "cmyk_64x64_rgb.png"))

    # JPEG: flat 8x8 blocks decode exactly in any IDCT, so the only
    # difference left is the YCbCr->RGB conversion (4:4:4) or also the chroma
    # upsampling (4:2:0).
    # Flat 16x16 blocks (one per MCU) keep even subsampled chroma blocks
    # flat, so 4:2:2 and 4:2:0 isolate libjpeg's "fancy" chroma upsampling.
    # Odd sizes (61x45) exercise the right/bottom edge handling.
    blocks8 = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    blocks16 = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)[:45, :61]
    for arr, sub, tag in ((blocks8, 0, "blocks8_64x48_444"), (blocks8, 2, "blocks8_64x48_420"),
                          (blocks16, 1, "blocks16_61x45_422"), (blocks16, 2, "blocks16_61x45_420")):
        jn = tag + ".jpg"
        Image.fromarray(arr, "RGB").save(os.path.join(OUT, jn), quality=95, subsampling=sub)
        Image.open(os.path.join(OUT, jn)).convert("RGB").save(os.path.join(OUT, tag + "_pil.png"))

    manifest = {
        "generator": "tools/gen_preprocess_fixtures.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "pillow": Image.__version__, "numpy": np.__version__},
        "specs": {k: spec_json(v) for k, v in SPECS.items()},
        "cases": cases,
        "photos": photos,
    }
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        # One case per line: small, and diffs stay readable.
        f.write("{\n")
        keys = list(manifest)
        for i, k in enumerate(keys):
            v = manifest[k]
            f.write(json.dumps(k) + ": ")
            if isinstance(v, list):
                f.write("[\n" + ",\n".join(json.dumps(c, separators=(",", ":")) for c in v) + "\n]")
            else:
                f.write(json.dumps(v, separators=(",", ":")))
            f.write(",\n" if i + 1 < len(keys) else "\n")
        f.write("}\n")
    print(f"{len(cases)} cases, {len(photos)} photos -> {OUT}")


if __name__ == "__main__":
    main()
