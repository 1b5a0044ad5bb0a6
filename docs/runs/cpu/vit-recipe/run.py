"""ViT-from-scratch learning-rate check on real MNIST, CPU, 1 thread.
usage: AMPCORE_DATA_DIR=DIR python run.py MODEL SIZE LR WD WARMUP SCHEDULE(const|linear) STEPS TRAIN [TAG]"""
import json, os, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from ampcore.data import mnist
from ampcore.workloads.vision import build_model

model_name, size, lr, wd, warm, sched, steps, ntrain = sys.argv[1:9]
size, lr, wd, warm, steps, ntrain = int(size), float(lr), float(wd), int(warm), int(steps), int(ntrain)
tag = sys.argv[9] if len(sys.argv) > 9 else ""
t0 = time.time()
splits = mnist.load_mnist(Path(os.environ.get("AMPCORE_DATA_DIR", "../shared/data")).resolve(), False)
tx, ty = splits.train_images[:ntrain], splits.train_labels[:ntrain]
hx, hy = splits.test_images[:1000], splits.test_labels[:1000]   # held out: first 1,000 test digits
torch.manual_seed(42)
model = build_model(model_name, size, 10)
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
def factor(step):  # linear warm-up over `warm` steps, then constant or linear decay to 0
    if step < warm:
        return (step + 1) / warm
    return 1.0 if sched == "const" else max(0.0, 1 - (step - warm) / max(1, steps - warm))
scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor)
g = torch.Generator().manual_seed(42)
order = torch.cat([torch.randperm(ntrain, generator=g) for _ in range(steps * 64 // ntrain + 1)])
losses = []
model.train()
for step in range(steps):
    idx = order[step * 64:(step + 1) * 64]
    loss = torch.nn.functional.cross_entropy(model(tx[idx]), ty[idx])
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); scheduler.step()
    losses.append(loss.item())
    if step % 20 == 0 or step == steps - 1:
        print(f"step {step} loss {loss.item():.4f} {time.time()-t0:.0f}s", flush=True)
model.eval(); correct = 0
with torch.no_grad():
    for i in range(0, len(hy), 250):
        correct += (model(hx[i:i+250]).argmax(-1) == hy[i:i+250]).sum().item()
mean = lambda xs: sum(xs) / len(xs)
res = dict(tag=tag, model=model_name, size=size, lr=lr, wd=wd, warmup=warm, schedule=sched,
           steps=steps, train=ntrain, first10=round(mean(losses[:10]), 4),
           last20=round(mean(losses[-20:]), 4), heldout_acc=correct / len(hy),
           minutes=round((time.time() - t0) / 60, 2))
print(json.dumps(res), flush=True)
with open("/tmp/vit-recipe/results.jsonl", "a") as f:
    f.write(json.dumps(res) + "\n")
