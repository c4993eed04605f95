#!/usr/bin/env python3
"""Reference timing of StyleGAN2-ADA training iterations with the official code on PyTorch, for
`whichgan bench train`. The official code is not part of this project: pass the folder of your
copy of NVlabs/stylegan2-ada-pytorch.

  python3 stylegan2_train_torch.py --official DIR --config run.json [--threads N]
                                   [--device cpu|cuda:N]

run.json (written by `whichgan bench train`): G_kwargs, D_kwargs, batch, lr, gamma, pl_weight,
style_mixing, ema_kimg, p, warmup and timed iterations, and variants: a list of {name,
num_fp16_res, batch_gpu}. The loop is the official training loop's phase schedule on one
device: Gmain, Greg every 4, Dmain, Dreg every 16, each phase in rounds of batch_gpu images
accumulating gradients, Adam's lr and betas adjusted for the lazy intervals, G_ema after each
iteration, the bgc augmentation at a fixed p. Real images are random 8-bit images. Prints one
JSON object: {<variant name>: sec/kimg, …, "plugins" (CUDA plugins compiled, on a GPU),
"iterations", "batch", "threads"}.
"""
import argparse, copy, json, os, sys, time

import torch

BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
           brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sys.path.insert(0, args.official)
    from official_plugins import official_plugins_load
    from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix
    from training.augment import AugmentPipe
    from training.loss import StyleGAN2Loss
    from training.networks import Discriminator, Generator

    # As the official training loop sets them.
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    conv2d_gradfix.enabled = True
    grid_sample_gradfix.enabled = True

    cfg = json.load(open(args.config))
    result = {"iterations": cfg["iterations"], "batch": cfg["batch"], "threads": args.threads}
    if cuda:
        result["plugins"] = official_plugins_load()
    for variant in cfg["variants"]:
        result[variant["name"]] = sec_per_kimg(cfg, variant, device, AugmentPipe, StyleGAN2Loss,
                                               Discriminator, Generator)
    print(json.dumps(result))


def sec_per_kimg(cfg, variant, device, AugmentPipe, StyleGAN2Loss, Discriminator, Generator):
    torch.manual_seed(0)
    g_kwargs = copy.deepcopy(cfg["G_kwargs"])
    d_kwargs = copy.deepcopy(cfg["D_kwargs"])
    g_kwargs["synthesis_kwargs"]["num_fp16_res"] = variant["num_fp16_res"]
    d_kwargs["num_fp16_res"] = variant["num_fp16_res"]
    G = Generator(**g_kwargs).train().requires_grad_(False).to(device)
    D = Discriminator(**d_kwargs).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    pipe = AugmentPipe(**BGC).train().requires_grad_(False).to(device)
    pipe.p.copy_(torch.as_tensor(cfg["p"]))
    loss = StyleGAN2Loss(device=device, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
                         augment_pipe=pipe, style_mixing_prob=cfg["style_mixing"],
                         r1_gamma=cfg["gamma"], pl_weight=cfg["pl_weight"])
    phases = []
    for name, module, interval in [("G", G, 4), ("D", D, 16)]:
        ratio = interval / (interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=cfg["lr"] * ratio,
                               betas=(0.0, 0.99 ** ratio), eps=1e-8)
        phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]

    batch, batch_gpu = cfg["batch"], variant["batch_gpu"]
    res = g_kwargs["img_resolution"]
    reals = torch.randint(0, 256, [256, 3, res, res], dtype=torch.uint8, device=device)
    c = torch.zeros([batch_gpu, 0], device=device)
    ema_beta = 0.5 ** (batch / max(cfg["ema_kimg"] * 1000, 1e-8))

    def iteration(batch_idx):
        pick = torch.randint(0, len(reals), [batch], device=device)
        real = (reals[pick].to(torch.float32) / 127.5 - 1).split(batch_gpu)
        all_z = torch.randn([len(phases) * batch, G.z_dim], device=device).split(batch)
        for (name, module, opt, interval), z in zip(phases, all_z):
            if batch_idx % interval != 0:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            rounds = list(zip(real, z.split(batch_gpu)))
            for round_idx, (real_img, gen_z) in enumerate(rounds):
                loss.accumulate_gradients(phase=name, real_img=real_img, real_c=c, gen_z=gen_z,
                                          gen_c=c, sync=round_idx == len(rounds) - 1,
                                          gain=interval)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    warmup, timed = cfg["warmup"], cfg["iterations"]
    for i in range(warmup):
        iteration(i)
    sync()
    start = time.perf_counter()
    for i in range(warmup, warmup + timed):
        iteration(i)
    sync()
    return (time.perf_counter() - start) / (timed * batch / 1000)


if __name__ == "__main__":
    main()
