#!/usr/bin/env python3
"""The study's Figure 3 sweep run by the public playground itself (yandex-research/gan-transfer),
on the CPU, for one seed: its networks, data, training loop, W1 and recall, with only the device
changed. The playground is not part of this project: pass the folder of your clone.

  python3 playground_figure3.py --playground DIR --seed S --work DIR --out DIR
                                [--pretrain-steps 5001] [--finetune-steps 1001] [--every 50]

What runs, as the public notebook does it:
  1. torch.manual_seed(S); `train` on Source-I (FatCircle r=20, σ=4) for --pretrain-steps G
     steps, W1 every 250, a checkpoint every --every G steps (label s = after s+1 G updates);
  2. for each checkpoint: G and D in eval mode, 1000 G samples, the ∇D
     similarity (cosine between the direction to the nearest target centre and the gradient of
     the playground's `generator_loss`, NaN cosines dropped) and the playground's
     `recall_metric` (float32, |u|²−2u·v+|v|²) against 1000 fresh target samples;
  3. `train` from the checkpoint on the target for --finetune-steps G steps (fresh Adam), W1
     every 250 (labels 0, 250, …: after 1, 251, … G updates); the score is the least W1.
Besides the notebook's numbers each row holds the playground's `precision_metric` on the same
samples and recall and precision in exact (float64) arithmetic, for comparison; these use no
random numbers, so the notebook's stream is unchanged.

Only what draws pictures is left out (matplotlib figures, GIFs, TensorBoard): none of it draws
random numbers, except `make_writer`'s one latent, which is kept. Checkpoints of a fine-tune are
deleted once it ends.

One departure from the notebook's order, for a run that can stop and go on: each checkpoint's
probe and fine-tune start from torch.manual_seed(S·10⁶ + label + 1) rather than from where the
previous checkpoint left the random stream, and the checkpoints run every 200 steps first, then
those every 100, then the rest, so that a stopped sweep holds an evenly spread subset. Run again
with the same arguments, the script keeps the finished pretraining and rows in --work/--out and
does the rest.

Writes to --out: pretrain-w1-seed-S.csv (step, W1 of G and of G-EMA to Source-I) and
figure3-seed-S.csv (one row per finished checkpoint, in label order, rewritten after each).
"""
import argparse, csv, json, os, shutil, sys, time, types

import numpy as np
import torch


class Nothing:
    """Stands in for a figure, an image, a plotting module or a writer: every use is a no-op."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __iter__(self):
        return iter(())


def cpu_device(fn):
    def on_cpu(*args, **kwargs):
        if kwargs.get("device") == "cuda":
            kwargs["device"] = "cpu"
        return fn(*args, **kwargs)

    return on_cpu


def import_playground(root):
    """Imports the playground from `root` with the CUDA device mapped to the CPU and picture
    output stubbed; returns (train, data, precision_recall) modules."""
    for name in ["matplotlib", "matplotlib.pyplot", "PIL", "imageio", "ot.plot",
                 "torch.utils.tensorboard"]:
        sys.modules[name] = Nothing()
    sys.modules["torch.utils.tensorboard"] = types.SimpleNamespace(SummaryWriter=Nothing())
    import ot

    ot.plot = Nothing()
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    for name in ["randn", "rand", "ones", "zeros"]:
        setattr(torch, name, cpu_device(getattr(torch, name)))
    sys.path.insert(0, root)
    import playground.data as data

    # model.py imports SAMPLES_DIM from the authors' own package path.
    for name in ["gans", "gans.models", "gans.models.playground"]:
        sys.modules[name] = types.ModuleType(name)
    sys.modules["gans.models.playground.data"] = data
    import playground.precision_recall as precision_recall
    import playground.test as test
    import playground.train as train

    test.fig_to_img = Nothing()
    test.plt = Nothing()
    train.plot_samples = Nothing()
    train.make_gif = Nothing()
    return train, data, precision_recall


def exact_recall_precision(real, fake, k=5):
    """k-NN recall and precision in float64 with exact distances (the same definition)."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)

    def radii(x):
        d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        return np.sort(d, axis=1)[:, k]

    cross = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))
    recall = (cross < radii(fake)[None]).any(axis=1).mean()
    precision = (cross < radii(real)[:, None]).any(axis=0).mean()
    return float(recall), float(precision)


def probe(train, pr, G, D, target):
    """The notebook's measurements of a checkpoint (G, D in eval mode)."""
    centres = target.centers
    with torch.no_grad():
        samples = G(torch.randn([1000, G.dim_z])).cpu()
        nearest = (samples[None] - centres.view(-1, 1, 2)).norm(dim=-1).min(dim=0).indices
    shift = torch.nn.Parameter(torch.zeros_like(samples))
    train.generator_loss(D, samples + shift, train.LossType.vanila).backward()
    grad = shift.grad / shift.grad.norm(dim=1)[:, None]
    sim = torch.cosine_similarity(centres[nearest] - samples, grad)
    real = target(1000)
    recall = pr.recall_metric(real, samples)
    precision, _ = pr.precision_metric(real.numpy(), samples.numpy())
    recall_exact, precision_exact = exact_recall_precision(real.numpy(), samples.numpy())
    kept = sim[sim == sim]
    return {
        "recall": float(recall),
        "precision": float(precision),
        "recall_exact": recall_exact,
        "precision_exact": precision_exact,
        "grad_sim_notebook": kept.mean().item(),
        "grad_sim_samples": int(kept.numel()),
    }


def load(playground_model, path):
    G, D = playground_model.Generator(), playground_model.Discriminator()
    state = torch.load(path, map_location="cpu")
    G.load_state_dict(state["generator"])
    D.load_state_dict(state["discriminator"])
    return G.eval(), D.eval()


def write_csv(path, header, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--playground", required=True, help="clone of yandex-research/gan-transfer")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--work", required=True, help="scratch folder for the runs' checkpoints")
    ap.add_argument("--out", required=True, help="folder for the CSV files")
    ap.add_argument("--pretrain-steps", type=int, default=5001)
    ap.add_argument("--finetune-steps", type=int, default=1001)
    ap.add_argument("--every", type=int, default=50, help="checkpoint every this many G steps")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    train, data, pr = import_playground(os.path.abspath(a.playground))
    import playground.model as model

    source = data.FatCircle(r=20, sigma=4)
    target = data.GaussianMix(centers="circle", sigma=0.25, size=20)
    work = os.path.join(a.work, f"seed-{a.seed}")
    os.makedirs(a.out, exist_ok=True)
    started = time.time()

    params = dict(loss="vanila", d_steps=4, steps_per_test=250, steps_per_save=a.every)
    if not os.path.isfile(f"{work}/source-1/checkpoints/models_final.pt"):
        shutil.rmtree(work, ignore_errors=True)
        torch.manual_seed(a.seed)
        G, D = model.Generator(), model.Discriminator()
        train.train(G.eval(), D.eval(), source, f"{work}/source-1",
                    params=train.TrainParams(steps=a.pretrain_steps, **params))
    with open(f"{work}/source-1/metrics.json") as f:
        pretrain = {int(k): v for k, v in json.load(f).items()}
    write_csv(os.path.join(a.out, f"pretrain-w1-seed-{a.seed}.csv"),
              ["seed", "step", "w1_g", "w1_g_ema"],
              [[a.seed, s, pretrain[s]["W1_g"], pretrain[s]["W1_g_ema"]] for s in sorted(pretrain)])

    folder = f"{work}/source-1/checkpoints"
    labels = sorted(int(n[len("models_"):-len(".pt")]) for n in os.listdir(folder)
                    if n.startswith("models_") and n[len("models_"):-len(".pt")].isdigit())
    rows_path = os.path.join(a.out, f"figure3-seed-{a.seed}.csv")
    header, rows = None, {}
    if os.path.isfile(rows_path):
        with open(rows_path) as f:
            kept = list(csv.reader(f))
        header, rows = kept[0], {int(r[1]): r for r in kept[1:]}
    order = sorted(labels, key=lambda s: (s % (4 * a.every) != 0, s % (2 * a.every) != 0, s))
    for label in order:
        if label in rows:
            continue
        torch.manual_seed(a.seed * 1_000_000 + label + 1)
        G, D = load(model, f"{folder}/models_{label}.pt")
        measured = probe(train, pr, G, D, target)
        G, D = load(model, f"{folder}/models_{label}.pt")
        run = f"{work}/transfers/{label}"
        train.train(G, D, target, run, params=train.TrainParams(steps=a.finetune_steps, **params))
        with open(f"{run}/metrics.json") as f:
            w1 = {int(k): v["W1_g"] for k, v in json.load(f).items()}
        shutil.rmtree(f"{run}/checkpoints", ignore_errors=True)
        eval_labels = sorted(w1)
        # The notebook's score: np.min, NaN when a W1 is (a diverged fine-tune).
        curve = [w1[s] for s in eval_labels]
        rows[label] = [a.seed, label, measured["recall"], measured["precision"],
                       measured["recall_exact"], measured["precision_exact"],
                       measured["grad_sim_notebook"], measured["grad_sim_samples"], *curve,
                       float(np.min(curve))]
        header = header or ["seed", "checkpoint", "recall", "precision", "recall_exact",
                            "precision_exact", "grad_sim_notebook", "grad_sim_samples",
                            *[f"w1_step_{s}" for s in eval_labels], "min_w1"]
        write_csv(rows_path, header, [rows[s] for s in sorted(rows)])
        print(f"seed {a.seed}: checkpoint {label} ({len(rows)}/{len(labels)}) recall "
              f"{measured['recall']:.3f} min W1 {rows[label][-1]:.3f}  {time.time() - started:.0f} s",
              flush=True)
    print(json.dumps({"seed": a.seed, "checkpoints": len(rows), "seconds": time.time() - started}))


if __name__ == "__main__":
    main()
