#!/usr/bin/env python3
"""Reference side of `whichgan bench features`: pytorch-fid's FID Inception-v3 on CPU.

  inception_torch.py make-weights W.pth        formula weights (tests/fixtures/inception/formula.md,
                                               set A) as a legacy torch.save state dict, like
                                               pt_inception-2015-12-05-6726825d.pth
  inception_torch.py make-images DIR --n N --res R   N deterministic RGB PNGs of R x R
  inception_torch.py time DIR --weights W.pth --out F.npy [--batch B] [--threads T]
                                               pytorch-fid's get_activations over the PNGs in DIR
Prints one JSON object on its last line.
"""
import argparse, json, os, time

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("what", choices=["make-weights", "make-images", "time"])
ap.add_argument("path")
ap.add_argument("--n", type=int, default=1000)
ap.add_argument("--res", type=int, default=256)
ap.add_argument("--weights")
ap.add_argument("--out")
ap.add_argument("--batch", type=int, default=50)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()


def formula_state_dict():
    from pytorch_fid.inception import FIDInceptionA  # noqa: F401  (pytorch-fid is installed)
    import pytorch_fid.inception as fid_inception
    import torchvision

    # The architecture of fid_inception_v3() without its download.
    model = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, init_weights=False)
    model.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
    model.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
    model.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
    model.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
    model.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
    model.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
    model.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
    model.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
    model.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
    state = model.state_dict()
    A, B, C, P, WMUL = 0.731, 1.37, 0.0173, 65521, 4.5
    keys = sorted(k for k in state if not k.endswith("num_batches_tracked"))
    for t, key in enumerate(keys):
        shape = state[key].shape
        i = np.arange(int(np.prod(shape)), dtype=np.uint64)
        s = np.sin((A * i.astype(np.float64) + B * t) + C * ((i * i) % P).astype(np.float64))
        if key.endswith("bn.weight"):
            v = 1 + 0.1 * s
        elif key.endswith("bn.bias"):
            v = 0.05 * s
        elif key.endswith("running_mean"):
            v = 0.05 * s
        elif key.endswith("running_var"):
            v = 1 + 0.5 * np.abs(s)
        elif key.endswith("weight"):
            v = np.sqrt(WMUL / int(np.prod(shape[1:]))) * s
        else:
            v = 0.05 * s
        state[key] = torch.from_numpy(v.astype(np.float32).reshape(shape))
    return state


if a.what == "make-weights":
    torch.save(formula_state_dict(), a.path, _use_new_zipfile_serialization=False)
    print(json.dumps({"weights": a.path}))
elif a.what == "make-images":
    from PIL import Image

    os.makedirs(a.path, exist_ok=True)
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0 : a.res, 0 : a.res] / a.res
    for k in range(a.n):
        f = rng.uniform(2, 12, size=3)
        phase = rng.uniform(0, 6.3, size=3)
        img = np.stack([np.sin(f[c] * (xx + yy * (c + 1)) + phase[c]) for c in range(3)], -1)
        img = img + 0.2 * rng.standard_normal(img.shape)
        img = np.clip((img + 1.2) / 2.4 * 255, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(a.path, f"img{k:05d}.png"))
    print(json.dumps({"images": a.n}))
else:
    torch.set_num_threads(a.threads)
    import pytorch_fid.inception as fid_inception
    from pytorch_fid.fid_score import get_activations

    state = torch.load(a.weights)
    fid_inception.load_state_dict_from_url = lambda *args, **kw: state
    model = fid_inception.InceptionV3([3]).eval()
    files = sorted(os.path.join(a.path, f) for f in os.listdir(a.path) if f.endswith(".png"))
    get_activations(files[: a.batch], model, a.batch, 2048, "cpu", 0)  # warm-up
    start = time.perf_counter()
    act = get_activations(files, model, a.batch, 2048, "cpu", 0)
    seconds = time.perf_counter() - start
    np.save(a.out, act.astype(np.float32))
    print(json.dumps({"seconds": seconds, "n": len(files)}))
