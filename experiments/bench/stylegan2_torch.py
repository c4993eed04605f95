#!/usr/bin/env python3
"""Reference timing of the official StyleGAN2-ADA networks on PyTorch CPU, for
`whichgan bench stylegan2`. The official code is not part of this project: pass the folder of
your copy of NVlabs/stylegan2-ada-pytorch.

  python3 stylegan2_torch.py --official DIR --fixture DIR [--batch 8] [--reps 5] [--threads N]

DIR of --fixture holds config.json (constructor arguments) and checkpoint.pt ({'G', 'D'} state
dicts). Times G(z) in eval mode with constant noise, and D(x) forward plus backward of its summed
logits to every parameter. Prints one JSON object: {"g_forward_ms", "d_forward_backward_ms",
"batch", "threads"} (medians over --reps after one warm-up).
"""
import argparse, json, os, statistics, sys, time

import torch


def median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, args.official)
    from training.networks import Discriminator, Generator

    config = json.load(open(os.path.join(args.fixture, "config.json")))
    state = torch.load(os.path.join(args.fixture, "checkpoint.pt"), map_location="cpu")
    G = Generator(**config["G_kwargs"]).eval()
    G.load_state_dict(state["G"])
    D = Discriminator(**config["D_kwargs"]).eval()
    D.load_state_dict(state["D"])
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([args.batch, G.z_dim], generator=gen)
    with torch.no_grad():
        img = G(z, None, noise_mode="const")

    def g_forward():
        with torch.no_grad():
            G(z, None, noise_mode="const")

    def d_forward_backward():
        D.zero_grad(set_to_none=True)
        D(img, None).sum().backward()

    print(json.dumps({
        "g_forward_ms": median_ms(g_forward, args.reps),
        "d_forward_backward_ms": median_ms(d_forward_backward, args.reps),
        "batch": args.batch,
        "threads": args.threads,
    }))


if __name__ == "__main__":
    main()
