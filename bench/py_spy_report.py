"""Bucket a py-spy raw profile of `bench/train_throughput.py` into where a training step's time goes.

Used by `python bench/train_throughput.py --py-spy-report FILE` (FILE from
`py-spy record --format raw -o FILE -- python bench/train_throughput.py --only ours-sac`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

BUCKETS = [  # first match wins, tested against the whole main-thread stack (py-spy 0.4 frame names)
    ("snapshot / eval (not in the window)", ("Trainer._snapshot (",)),
    ("commit: replay append + checkpoint", ("Trainer._commit (",)),
    ("model fit (not in the window)", ("Trainer._fit_model (",)),
    ("update: Polyak target update", ("polyak_update (",)),
    ("update: Adam step", ("Adam.step (", "Optimizer.profile_hook_step")),
    ("update: zero_grad", ("zero_grad (",)),
    ("update: backward", ("Tensor.backward (",)),
    ("update: target value (forward, no grad)", ("one_step_targets (",)),
    ("update: metrics .item() and dict", ("@item-lines",)),
    ("update: forward passes + losses", (".update (engine/agents/",)),
    ("replay sample (gather + as_tensor)", ("Replay.sample (",)),
    ("train row (recorder)", ("TrainRecorder.train (",)),
    ("act: policy forward on 1 obs", (".act (engine/agents/",)),
    ("env.step (MuJoCo + wrappers)", (".step (gymnasium/",)),
    ("sim state get (2 per step)", ("get_sim_state (",)),
    ("replay add", ("Replay.add (",)),
    ("env.reset", (".reset (gymnasium/",)),
    ("loop: rest of _collect_one", ("Trainer._collect_one (",)),
    ("loop: rest of _update", ("Trainer._update (",)),
    ("loop: rest of run", ("Trainer.run (",)),
]


def _item_frames() -> tuple[str, ...]:
    """py-spy frame names of the lines of SAC/DDPG.update that build the metrics dict."""
    import inspect

    from engine.agents.ddpg import DDPG
    from engine.agents.sac import SAC

    out = []
    for cls in (SAC, DDPG):
        lines, first = inspect.getsourcelines(cls.update)
        ret = next(i for i, line in enumerate(lines) if line.strip().startswith("return {"))
        path = f"engine/agents/{cls.__module__.rsplit('.', 1)[1]}.py"
        out += [f"{cls.__name__}.update ({path}:{first + i})" for i in range(ret, len(lines))]
    return tuple(out)


def py_spy_report(path: str) -> None:
    """Bucket a `py-spy record --format raw` profile (collapsed stacks) of `--only ours-sac`:
    main-thread samples inside Trainer.run, by what they were doing."""
    items = _item_frames()
    counts: Counter[str] = Counter()
    in_loop = total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        if "Trainer.run (" not in stack:
            continue
        in_loop += int(n)
        for name, needles in BUCKETS:
            if any((x in stack) if x != "@item-lines" else any(f in stack for f in items) for x in needles):
                counts[name] += int(n)
                break
    print(f"{total} samples, {in_loop} in Trainer.run (the rest: imports, set-up, idle store threads)")
    for name, n in counts.most_common():
        print(f"  {name:42s} {n:7d}  {100 * n / max(in_loop, 1):5.1f} %")
