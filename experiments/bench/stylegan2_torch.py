#!/usr/bin/env python3
"""Reference timing of the official StyleGAN2-ADA networks on PyTorch, for
`whichgan bench stylegan2`. The official code is not part of this project: pass the folder of
your copy of NVlabs/stylegan2-ada-pytorch.

  python3 stylegan2_torch.py --official DIR --config FILE [--checkpoint FILE] [--batch 8]
                             [--reps 5] [--threads N] [--device cpu|cuda:N]

FILE of --config holds the constructor arguments (G_kwargs, D_kwargs, float32); --checkpoint a
{'G', 'D'} state dict file (fresh networks without it). Times G(z) in eval mode with constant
noise, and D(x) forward plus backward of its summed logits to every parameter. On a GPU, times
them again with float16 in the four highest resolutions (as the official `auto` configuration
runs), same weights, and says whether the official CUDA plugins compiled. Prints one JSON object:
{"g_forward_ms", "d_forward_backward_ms", ["g_forward_ms_fp16", "d_forward_backward_ms_fp16",
"plugins",] "batch", "threads"} (medians over --reps after one warm-up).
"""
import argparse, json, os, statistics, sys, time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        # As the official training loop sets them.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    sys.path.insert(0, args.official)
    from official_plugins import official_plugins_load
    from training.networks import Discriminator, Generator

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def median_ms(fn):
        fn()
        sync()
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    config = json.load(open(args.config))
    torch.manual_seed(0)
    G = Generator(**config["G_kwargs"]).eval().to(device)
    D = Discriminator(**config["D_kwargs"]).eval().to(device)
    if args.checkpoint:
        state = torch.load(args.checkpoint, map_location=device)
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([args.batch, G.z_dim], generator=gen).to(device)

    def timings(G, D):
        with torch.no_grad():
            img = G(z, None, noise_mode="const")

        def g_forward():
            with torch.no_grad():
                G(z, None, noise_mode="const")

        def d_forward_backward():
            D.zero_grad(set_to_none=True)
            D(img, None).sum().backward()

        return median_ms(g_forward), median_ms(d_forward_backward)

    result = {"batch": args.batch, "threads": args.threads}
    if cuda:
        # Before the first forward pass, which would otherwise try the plugins first.
        result["plugins"] = official_plugins_load()
    result["g_forward_ms"], result["d_forward_backward_ms"] = timings(G, D)
    if cuda:
        half = {}
        for name, net, cls in [("G", G, Generator), ("D", D, Discriminator)]:
            kwargs = json.loads(json.dumps(config[name + "_kwargs"]))
            layers = kwargs["synthesis_kwargs"] if name == "G" else kwargs
            layers["num_fp16_res"] = 4
            half[name] = cls(**kwargs).eval().to(device)
            half[name].load_state_dict(net.state_dict())
        result["g_forward_ms_fp16"], result["d_forward_backward_ms_fp16"] = timings(
            half["G"], half["D"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
