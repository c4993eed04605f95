#!/usr/bin/env python3
"""Reference side of `whichgan bench memory`: one training pass of the official StyleGAN2-ADA
code on PyTorch CPU (its reference operations, float32) in this process, measured as the
high-water mark of its resident memory. The official code is not part of this project: pass the
folder of your copy of NVlabs/stylegan2-ada-pytorch.

  python3 stylegan2_memory_torch.py --official DIR --config pass.json [--threads N]

pass.json (written by `whichgan bench memory`): G_kwargs, D_kwargs, batch, gamma, pl_weight,
style_mixing and pass: g-forward (G under no_grad), main (the loss's Gmain then Dmain phases),
r1 (Dreg) or path-length (Greg); one round, no augmentation. The kernel's mark
(/proc/self/clear_refs) is reset once the networks and inputs are made. The pass then runs a
second time under a dispatch mode that counts the ATen operations it runs. Prints one JSON
object: baseline_mib, peak_mib, ops, seconds.
"""
import argparse, json, os, sys, time

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def resident_mib():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value
    kib = lambda name: float(fields[name].split()[0])
    return kib("VmRSS") / 1024, kib("VmHWM") / 1024


class CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, args.official)
    from training.loss import StyleGAN2Loss
    from training.networks import Discriminator, Generator

    cfg = json.load(open(args.config))
    torch.manual_seed(0)
    G = Generator(**cfg["G_kwargs"]).train().requires_grad_(False)
    D = Discriminator(**cfg["D_kwargs"]).train().requires_grad_(False)
    loss = StyleGAN2Loss(device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=G.synthesis,
                         D=D, augment_pipe=None, style_mixing_prob=cfg["style_mixing"],
                         r1_gamma=cfg["gamma"], pl_weight=cfg["pl_weight"])
    n, res = cfg["batch"], cfg["G_kwargs"]["img_resolution"]
    z = torch.randn([n, G.z_dim])
    c = torch.zeros([n, 0])
    real = torch.randn([n, 3, res, res]).clamp(-1, 1)

    def phase(name, module):
        module.requires_grad_(True)
        loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=z, gen_c=c,
                                  sync=True, gain=1)
        module.requires_grad_(False)
        for p in module.parameters():
            p.grad = None

    def run():
        if cfg["pass"] == "g-forward":
            with torch.no_grad():
                G(z, c)
        elif cfg["pass"] == "main":
            phase("Gmain", G)
            phase("Dmain", D)
        elif cfg["pass"] == "r1":
            phase("Dreg", D)
        elif cfg["pass"] == "path-length":
            phase("Greg", G)
        else:
            raise SystemExit(f"unknown pass {cfg['pass']}")

    baseline, _ = resident_mib()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    _, peak = resident_mib()
    counter = CountOps()
    with counter:
        run()
    print(json.dumps({"baseline_mib": baseline, "peak_mib": peak, "ops": counter.ops,
                      "seconds": seconds}))


if __name__ == "__main__":
    main()
