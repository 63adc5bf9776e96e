"""A stand-in for a ResNet training script, small enough to run anywhere in seconds: a
logistic-regression classifier on synthetic data, in the standard library only (inside the
job sandbox only the system Python is visible). It shows what a real script does with suanli:
it reads its hyper-parameters from the command line and the environment (`envs:`), logs a
line per epoch and saves a checkpoint to $SUANLI_CHECKPOINT_DIR, resuming from it on a retry."""

import argparse
import json
import math
import os
import random


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=float(os.environ.get("LEARNING_RATE", "0.5")))
    args = ap.parse_args()
    print(f"training for {args.epochs} epochs at learning rate {args.lr}", flush=True)
    rng = random.Random(0)
    true_w = [rng.uniform(-1, 1) for _ in range(8)]
    data = []
    for _ in range(2000):
        x = [rng.gauss(0, 1) for _ in range(8)]
        data.append((x, 1.0 if sum(a * b for a, b in zip(x, true_w)) > 0 else 0.0))
    ckpt_dir = os.environ.get("SUANLI_CHECKPOINT_DIR", ".")
    ckpt = os.path.join(ckpt_dir, "model.json")
    w, start = [0.0] * 8, 0
    if os.path.exists(ckpt):
        with open(ckpt) as f:
            saved = json.load(f)
        w, start = saved["w"], saved["epoch"]
        print(f"resumed from epoch {start}")
    for epoch in range(start, args.epochs):
        loss = correct = 0.0
        for x, y in data:
            p = 1 / (1 + math.exp(-sum(a * b for a, b in zip(x, w))))
            loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
            correct += (p > 0.5) == (y > 0.5)
            w = [wi - args.lr * (p - y) * xi / len(data) * 10 for wi, xi in zip(w, x)]
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss / len(data):.4f} "
              f"accuracy {correct / len(data):.3f}", flush=True)
        with open(ckpt, "w") as f:
            json.dump({"w": w, "epoch": epoch + 1}, f)
    print("done")


if __name__ == "__main__":
    main()
