"""Configuration of a training run: the algorithm preset, the environment and the recorders.

Defaults follow MVE (Feinberg et al. 2018, appendix A and Table 1) scaled down where a 2-core
machine cannot afford the paper's budget; every such choice is named in its field's doc.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """What an algorithm preset composes: an agent, where a model is used, and its defaults."""

    agent: str
    """Agent name in engine.agents.AGENTS."""
    critic_model: bool = False
    """Critic targets expand through the model (MVE targets)."""
    actor_model: bool = False
    """The actor's loss is a pathwise H-step expansion through the model (engine/agents/svg.py;
    SAC only; needs a differentiable, learned model)."""
    model: str = "mlp"
    """Default learned dynamics class."""
    horizon: int = 10
    """Default model horizon H (critic targets and/or actor)."""
    agent_defaults: Mapping[str, Any] = field(default_factory=dict)
    """Preset defaults of agent config fields (the run's `agent` overrides them)."""
    branched: bool = False
    """SAC trains on a real/model mix with branched model rollouts into a model buffer (MBPO;
    engine/train/branched.py)."""
    loop_defaults: Mapping[str, Any] = field(default_factory=dict)
    """Preset defaults of the loop fields in LOOP_DEFAULTS (the run's own values override them)."""
    rollout_defaults: Mapping[str, Any] = field(default_factory=dict)
    """Preset defaults of the branched-rollout config (the run's `rollout` overrides them)."""
    env_agent_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per env id, agent config defaults over `agent_defaults` (e.g. MBPO's target entropies)."""

    def __post_init__(self) -> None:
        if self.actor_model and self.agent != "sac":
            raise ValueError("a model-based actor is implemented for SAC only")
        if self.branched and self.agent not in BEHAVIOUR_AGENTS:
            raise ValueError(f"branched rollouts need an agent with a behaviour `sample` {BEHAVIOUR_AGENTS}")
        if set(self.loop_defaults) - set(LOOP_DEFAULTS):
            raise ValueError(f"loop_defaults may set {sorted(LOOP_DEFAULTS)} only")


#: agents with a batched behaviour `sample(obs)` for imagined branches
BEHAVIOUR_AGENTS = ("sac", "ddpg", "naf")

#: TrainConfig fields whose None means "the preset's default", and their defaults otherwise
LOOP_DEFAULTS = {"start_steps": 10_000, "model_start_steps": 5_000, "model_fit_interval": 5_000,
                 "updates_per_step": 1}


#: SAC-SVG eq. 14 target-entropy decay (app. A.2 searches H_init in {1, 0, -1, -2}, H_final in
#: {H_init, -5, -1, ..., -64}, beta in {1, ..., 64} per task); our one choice for every task
SVG_ENTROPY_DECAY = {"target_entropy": 0.0, "target_entropy_final": -2.0,
                     "target_entropy_decay_steps": 100_000, "target_entropy_decay_power": 1.0}

#: MBPO's SAC (softlearning defaults in MBPO's code): 2x256, lr 3e-4 everywhere, batch 256,
#: initial temperature 1 (log alpha = 0); target entropy -act_dim ("auto")
MBPO_SAC = {"hidden": 256, "actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4, "batch_size": 256,
            "init_alpha": 1.0}
#: MBPO's loop: model refit (and rollouts) every 250 steps (model_train_freq), 5k random steps
#: first (MBPO's n_initial_exploration_steps); G = 5 updates per env step is our 2-core choice
#: (MBPO appendix C: G = 20, 40 on HalfCheetah; its InvertedPendulum config: 10)
MBPO_LOOP = {"start_steps": 5_000, "model_start_steps": 5_000, "model_fit_interval": 250, "updates_per_step": 5}
#: MBPO's per-task SAC target entropies (MBPO's code, examples/config/<task>/0.py); other envs
#: keep SAC's -act_dim
MBPO_TARGET_ENTROPY = {"InvertedPendulum-v5": -0.05, "Hopper-v5": -1.0, "Walker2d-v5": -3.0,
                       "HalfCheetah-v5": -3.0, "Ant-v5": -4.0, "Humanoid-v5": -2.0}

#: IB: imaginary-to-real 4 (MVE footnote 1: "as used for 2 of 3 environments in Kalweit &
#: Boedecker"), so a fifth of each batch is real; imagined branches of MVE's H = 10 steps from
#: real states with DDPG's behaviour policy, 20k branches per model fit (a buffer of 40k rows
#: at the default fit interval of 5000 steps)
IB_ROLLOUT = {"real_ratio": 0.2, "schedule": (0, 1, 10, 10), "rollout_batch_size": 20_000}

#: NAF Alg. 2 (imagination rollouts): l = 10 steps (NAF sec. 6.3: 10 on the reacher, 5 on the
#: gripper) from the states of the newest n = 5 episodes (B_old, sec. 5.3), one branch per env
#: step (m branches every m steps) generated at each model fit; l imagined minibatches per real
#: one, as a mix inside each batch: real_ratio = 1 / (l + 1); rollouts off after 130 episodes
#: (sec. 6.3, gripper); the fictional buffer keeps the last 10 fits' branches
NAF_IMAGINATION_ROLLOUT = {"schedule": (0, 1, 10, 10), "rollout_batch_size": 1_000, "epoch_length": 1_000,
                           "retain_epochs": 10, "real_ratio": 1 / 11, "starts": "latest", "start_episodes": 5,
                           "stop_after_episodes": 130}
#: imagination pays early: 1k random steps, then the model refitted (and rollouts redone) every 1k
NAF_IMAGINATION_LOOP = {"start_steps": 1_000, "model_start_steps": 1_000, "model_fit_interval": 1_000}

PRESETS: dict[str, Preset] = {
    "ddpg": Preset("ddpg"),
    "mve-ddpg": Preset("ddpg", critic_model=True),
    "sac": Preset("sac"),
    "mve-sac": Preset("sac", critic_model=True),
    "naf": Preset("naf"),
    # SAC-SVG(H) (Amos et al. 2021, Alg. 1): actor through a deterministic GRU, model-free critic
    "sac-svg": Preset("sac", actor_model=True, model="gru", horizon=3, agent_defaults=SVG_ENTROPY_DECAY),
    # MAAC (Clavera et al. 2020, Alg. 1): actor through the ensemble, critic with MVE targets
    "maac": Preset("sac", critic_model=True, actor_model=True, model="ensemble", horizon=3),
    # MBPO (Janner et al. 2019, Alg. 2, appendix C): SAC on a real/model mix of branched rollouts
    "mbpo": Preset("sac", model="ensemble", branched=True, agent_defaults=MBPO_SAC, loop_defaults=MBPO_LOOP,
                   env_agent_defaults={env: {"target_entropy": h} for env, h in MBPO_TARGET_ENTROPY.items()}),
    # Imagination buffer (MVE sec. 4.1's IB baseline, MA-DDPG of Kalweit & Boedecker 2017): DDPG on
    # a mix of real and imagined transitions at an imaginary-to-real ratio of 4
    "ib-ddpg": Preset("ddpg", branched=True, rollout_defaults=IB_ROLLOUT),
    # NAF with imagination rollouts (Gu et al. 2016, Alg. 2, sec. 5.2-5.3): NAF on a real/imagined
    # mix of short on-policy branches from the newest episodes, through iteratively refitted
    # time-varying linear models (or the MLP, or the oracle), switched off after N episodes
    "naf-imagination": Preset("naf", branched=True, model="linear-tv", loop_defaults=NAF_IMAGINATION_LOOP,
                              rollout_defaults=NAF_IMAGINATION_ROLLOUT),
}

#: learned dynamics classes a run may choose (engine.models.make_dynamics names)
MODELS = ("mlp", "ensemble", "gru", "linear-tv")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (saved in the store as JSON)."""

    algo: str = "sac"
    """Preset: ddpg, mve-ddpg, sac, mve-sac, naf, sac-svg, maac, mbpo, ib-ddpg, naf-imagination
    (see PRESETS)."""
    env_id: str = "HalfCheetah-v5"
    """gymnasium environment id (Box observation and action spaces)."""
    steps: int = 100_000
    """Environment steps to collect."""
    seed: int = 0
    """Seed of the environment, the networks and the replay sampling."""
    fully_observable: bool = True
    """MuJoCo locomotion: keep the x coordinate in observations (MVE section 4; rewards then are
    functions of the observations)."""
    horizon: int | None = None
    """Model horizon H of the critic targets (MVE) and/or the actor (SVG, MAAC); None is the
    preset's default (10 for MVE, 3 for sac-svg and maac). Ignored by presets without a model;
    H = 0 is plain 1-step TD / SAC's actor loss."""
    tdk: bool = True
    """MVE TD-k trick: train the critic on imagined states too (False = the naive variant)."""
    dynamics: str = "learned"
    """"learned" (fit a model, class `model`) or "oracle" (restore and step the true simulator:
    MVE critic targets and MBPO rollouts)."""
    model: str | None = None
    """Learned dynamics class: mlp, ensemble, gru or linear-tv (time-varying linear-Gaussian, NAF
    sec. 5.3; not for presets that expand targets or the actor from replay states, which carry no
    time step); also used for Study 1 on every preset. None is the preset's default (gru for
    sac-svg, ensemble for maac and mbpo, linear-tv for naf-imagination, mlp otherwise)."""
    reward: str = "known"
    """Rewards and terminations of imagined steps with a learned model: "known" (the env's own
    functions, engine/models/known.py) or "learned" (SVG eqs. 12-13 models fitted with the
    dynamics; needed for envs without known functions)."""
    record_model: bool = True
    """Fit a model and record Study 1 open-loop errors even for presets that do not use one."""
    record_model_updates: int | None = 150
    """Cap on minibatch updates per fit of a model used only for Study 1 (FitConfig.max_updates;
    each refit continues from the last weights), so recording costs the same per interval however
    large the replay grows; None fits to early stopping. Models the agent uses are never capped."""
    start_steps: int | None = None
    """Uniformly random actions before learning starts; None: the preset's (MVE: 10k; mbpo: 5k)."""
    model_start_steps: int | None = None
    """Steps collected before the first model fit; None: the preset's (MVE: 5k; mbpo: 5k)."""
    updates_per_step: int | None = None
    """Gradient updates per environment step; None: the preset's (MVE: 4, we use 1 for the 2-core
    budget; mbpo: 5, MBPO's G is 20)."""
    model_fit_interval: int | None = None
    """Refit the dynamics model every this many environment steps; None: the preset's (5k;
    mbpo: 250, MBPO's model_train_freq, with a fresh batch of rollouts after every fit)."""
    snapshot_interval: int = 5_000
    """Evaluate and record Studies 1 and 2 every this many environment steps (and at the end)."""
    eval_episodes: int = 3
    """Evaluation episodes (deterministic policy) per snapshot."""
    eval_max_steps: int = 1000
    """Cap on the length of an evaluation episode."""
    critic_samples: int = 1000
    """State-action pairs per snapshot in the `critic` group (subsampled evenly, NaN-padded)."""
    model_error_starts: int = 64
    """Start states per split per snapshot in the `model_error` group."""
    model_error_horizon: int = 30
    """Largest open-loop horizon recorded (Study 1 asks for >= 30)."""
    holdout_fraction: float = 0.1
    """Fraction of replay blocks the model never fits (Study 1 holdout starts)."""
    holdout_block: int = 64
    """Length of a holdout block in steps (>= model_error_horizon keeps holdout rollouts clean)."""
    log_interval: int = 100
    """Average the agent's metrics over this many updates per `train` row."""
    commit_interval: int = 1_000
    """Commit the store (and checkpoint) every this many environment steps."""
    torch_threads: int = 1
    """CPU threads for torch: these networks are small, and a second thread mostly waits on
    the first (and stalls when anything else runs); try 2 on an idle machine."""
    agent: dict[str, Any] = field(default_factory=dict)
    """Overrides of the agent's config fields (see --print-config for the full set)."""
    model_config: dict[str, Any] = field(default_factory=dict)
    """Overrides of the dynamics model's config fields."""
    rollout: dict[str, Any] = field(default_factory=dict)
    """Overrides of the branched-rollout config fields (mbpo, ib-ddpg, naf-imagination;
    engine/train/branched.py)."""

    def __post_init__(self) -> None:
        if self.algo not in PRESETS:
            raise ValueError(f"unknown algo {self.algo!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[self.algo]
        if self.model is None:
            object.__setattr__(self, "model", preset.model)
        if self.horizon is None:
            object.__setattr__(self, "horizon", preset.horizon)
        for name, default in LOOP_DEFAULTS.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, preset.loop_defaults.get(name, default))
        if self.updates_per_step < 0 or self.model_fit_interval < 1:
            raise ValueError("updates_per_step must be >= 0 and model_fit_interval >= 1")
        if self.rollout and not preset.branched:
            raise ValueError("rollout settings apply to branched-rollout presets "
                             f"{sorted(k for k, p in PRESETS.items() if p.branched)}, not {self.algo!r}")
        if self.dynamics not in ("learned", "oracle"):
            raise ValueError("dynamics must be 'learned' or 'oracle'")
        if self.reward not in ("known", "learned"):
            raise ValueError("reward must be 'known' or 'learned'")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}")
        if self.model == "linear-tv" and (self.uses_model or self.actor_uses_model):
            raise ValueError(f"algo {self.algo!r} expands from replay states, which carry no time step: the "
                             "time-varying linear model (linear-tv) is for branched rollouts and Study 1")
        if self.steps < 1 or self.snapshot_interval < 1 or self.commit_interval < 1:
            raise ValueError("steps, snapshot_interval and commit_interval must be positive")
        if self.record_model_updates is not None and self.record_model_updates < 1:
            raise ValueError("record_model_updates must be >= 1 (or None for no cap)")
        if self.horizon < 0 or self.model_error_horizon < 1:
            raise ValueError("horizon must be >= 0 and model_error_horizon >= 1")
        if preset.actor_model and self.dynamics == "oracle":
            raise ValueError(f"algo {self.algo!r} backpropagates its actor loss through the model, and the "
                             "oracle (the MuJoCo simulator) is not differentiable: use dynamics 'learned'")

    @property
    def agent_name(self) -> str:
        """Which agent the preset builds."""
        return PRESETS[self.algo].agent

    @property
    def uses_model(self) -> bool:
        """Whether the critic targets expand through a model (MVE presets with H > 0)."""
        return PRESETS[self.algo].critic_model and self.horizon > 0

    @property
    def actor_uses_model(self) -> bool:
        """Whether the actor loss expands through the model (sac-svg, maac with H > 0)."""
        return PRESETS[self.algo].actor_model and self.horizon > 0

    @property
    def branched(self) -> bool:
        """Whether the agent trains on branched model rollouts (mbpo, ib-ddpg, naf-imagination)."""
        return PRESETS[self.algo].branched

    @property
    def agent_uses_model(self) -> bool:
        """Whether the agent's training uses the model (else it is fitted for Study 1 only)."""
        return self.uses_model or self.actor_uses_model or self.branched

    def model_idle_note(self) -> str | None:
        """A warning when a model-based preset's model would start only after the run ends: such
        a run is the model-free agent under another name (e.g. 2000 steps of `maac` with the
        default 5000-step model start)."""
        oracle_from_start = self.dynamics == "oracle" and not self.branched  # nothing to fit first
        if not self.agent_uses_model or oracle_from_start or self.model_start_steps < self.steps:
            return None
        return (f"{self.algo}'s model starts at step {self.model_start_steps} (model_start_steps), "
                f"but the run has {self.steps} steps: its agent never uses a model. Lower "
                "--model-start-steps to train it model-based.")

    def rollout_config(self):  # noqa: ANN201 - engine.train.branched.RolloutConfig (imported lazily)
        """The branched-rollout config: `rollout` over the defaults, schedule resolved for the env."""
        from engine.train.branched import RolloutConfig

        return RolloutConfig(**{**PRESETS[self.algo].rollout_defaults, **self.rollout}).for_env(self.env_id)

    def agent_overrides(self) -> dict[str, Any]:
        """Agent config fields that differ from the agent's defaults: the preset's, its per-env
        ones, then `agent`."""
        preset = PRESETS[self.algo]
        return {**preset.agent_defaults, **preset.env_agent_defaults.get(self.env_id, {}), **self.agent}

    def full(self) -> dict[str, Any]:
        """The config with the agent's and the model's configs expanded to every field (what the
        store keeps, so a run can be reproduced without knowing this version's defaults)."""
        from engine.agents import AGENTS
        from engine.models import model_config_class

        out = dataclasses.asdict(self)
        out["agent"] = dataclasses.asdict(dataclasses.replace(AGENTS[self.agent_name][1](), **self.agent_overrides()))
        model_cls = model_config_class(self.model)
        out["model_config"] = dataclasses.asdict(dataclasses.replace(model_cls(), **self.model_config))
        if self.branched:
            out["rollout"] = dataclasses.asdict(self.rollout_config())
        return json.loads(json.dumps(out, sort_keys=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a (partial) mapping, refusing unknown keys with their names."""
        return from_mapping(cls, data)


def from_mapping(cls: type, data: Mapping[str, Any]) -> Any:
    """`cls(**data)` for a config dataclass, refusing unknown keys with their names."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown}; known: {sorted(known)}")
    return cls(**data)
