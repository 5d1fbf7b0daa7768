"""Reference for train/torch_test.go: runs PyTorch's optimizers on the
problem the Go test writes (JSON on the path in argv[1]) and prints, as
JSON on stdout, the final parameters and optimizer state of every case.

Input: {"cases": [{name, kind, wd, momentum, nesterov}],
        "problem": {names, decay, values, grads[step][param], lrs[step]}}
Output: {case name: {param name: {"value": [...], "m": [...], "v": [...]}}}
Parameters that decay form one param group with weight_decay = wd, the
others a group with weight_decay 0. Single-tensor (foreach=False) kernels.
"""
import json
import sys

import torch


def make_opt(case, groups):
    kind = case["kind"]
    if kind == "adam":
        cls, kw = torch.optim.Adam, dict(betas=(0.9, 0.999), eps=1e-8)
    elif kind == "adamw":
        cls, kw = torch.optim.AdamW, dict(betas=(0.9, 0.999), eps=1e-8)
    else:
        cls, kw = torch.optim.SGD, dict(momentum=case["momentum"], nesterov=case["nesterov"], dampening=0)
    try:
        return cls(groups, lr=0.0, foreach=False, **kw)
    except TypeError:  # releases before the foreach switch
        return cls(groups, lr=0.0, **kw)


def run(case, prob):
    params = [torch.tensor(v, dtype=torch.float32, requires_grad=True) for v in prob["values"]]
    decay = [p for p, d in zip(params, prob["decay"]) if d]
    plain = [p for p, d in zip(params, prob["decay"]) if not d]
    opt = make_opt(case, [{"params": decay, "weight_decay": case["wd"]},
                          {"params": plain, "weight_decay": 0.0}])
    for grads, lr in zip(prob["grads"], prob["lrs"]):
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=torch.float32)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
    out = {}
    for name, p in zip(prob["names"], params):
        st = opt.state[p]
        rec = {"value": p.detach().tolist()}
        if "exp_avg" in st:
            rec["m"], rec["v"] = st["exp_avg"].tolist(), st["exp_avg_sq"].tolist()
        elif st.get("momentum_buffer") is not None:
            rec["m"] = st["momentum_buffer"].tolist()
        out[name] = rec
    return out


def main():
    with open(sys.argv[1]) as f:
        inp = json.load(f)
    torch.set_num_threads(1)
    res = {c["name"]: run(c, inp["problem"]) for c in inp["cases"]}
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
