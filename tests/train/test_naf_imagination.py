"""naf-imagination (NAF Alg. 2): NAF's behaviour sample, the preset, linear-TV branches that use
each start's time step and stop at the model's last fitted step, rollouts switched off after N
episodes, and real short runs through the CLI with each dynamics choice."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_train_cli import SHORT, _check_store, _config, _train

from engine.agents import AGENTS, NAF, NAFConfig
from engine.envs.factory import make_env
from engine.models.imagination import ModelImagination
from engine.models.known import known_functions
from engine.models.linear_tv import LinearTVDynamics
from engine.train.branched import BranchedRollouts, RolloutConfig
from engine.train.config import BEHAVIOUR_AGENTS, TrainConfig
from engine.train.loop import _model_config
from engine.train.replay import Replay

ENV = "InvertedPendulum-v5"


def test_behaviour_sample_is_mu_plus_clipped_gaussian_noise() -> None:
    env = make_env(ENV)
    agent = NAF(env.observation_space, env.action_space, NAFConfig(hidden=32, noise_sigma=0.3), seed=0)
    obs = torch.zeros(5000, env.observation_space.shape[0])
    action, _ = agent.sample(obs)
    half = float(env.action_space.high[0])  # InvertedPendulum: [-3, 3]
    with torch.no_grad():
        mu = float(agent.net.mu(obs[:1])[0, 0])
    unit = action[:, 0].numpy() / half
    assert abs(mu) < 0.3 and (np.abs(unit) <= 1 + 1e-6).all()  # a fresh mu is near 0: little clipping
    clipped = np.clip(mu + 0.3 * np.random.default_rng(0).standard_normal(200_000), -1, 1)
    np.testing.assert_allclose(unit.mean(), clipped.mean(), atol=0.015)
    np.testing.assert_allclose(unit.std(), clipped.std(), rtol=0.05)
    assert not torch.equal(agent.sample(obs[:5])[0], action[:5])  # fresh noise every call


def test_preset_composition_and_mbpo_target_entropies() -> None:
    cfg = TrainConfig(algo="naf-imagination", env_id=ENV)
    assert cfg.agent_name == "naf" and cfg.branched and cfg.model == "linear-tv" and not cfg.uses_model
    r = cfg.rollout_config()
    assert (r.starts, r.start_episodes, r.stop_after_episodes, r.schedule) == ("latest", 5, 130, (0, 1, 10, 10))
    assert r.real_ratio == pytest.approx(1 / 11)  # l = 10 imagined minibatches per real one
    with pytest.raises(ValueError, match="time step"):
        TrainConfig(algo="mve-sac", model="linear-tv")
    with pytest.raises(ValueError, match="starts"):
        RolloutConfig(starts="newest")
    assert all(callable(getattr(AGENTS[name][0], "sample", None)) for name in BEHAVIOUR_AGENTS)
    # models that branched rollouts use are fitted in full, never with Study 1's refit cap
    for algo in ("mbpo", "ib-ddpg"):
        c = TrainConfig(algo=algo)
        assert _model_config(c.model, c) is None or _model_config(c.model, c).fit.max_updates is None
    assert _model_config("linear-tv", TrainConfig(algo="sac", model="linear-tv")) is None
    # MBPO's per-task target entropies (its code's configs); other envs keep -act_dim (None)
    entropy = lambda env: TrainConfig(algo="mbpo", env_id=env).full()["agent"]["target_entropy"]  # noqa: E731
    assert (entropy("Hopper-v5"), entropy(ENV), entropy("HalfCheetah-v5"), entropy("Pendulum-v1")) == (-1, -0.05, -3, None)
    assert TrainConfig(algo="mbpo", env_id="Hopper-v5", agent={"target_entropy": -2}).agent_overrides()["target_entropy"] == -2
    assert "target_entropy" not in TrainConfig(algo="sac", env_id="Hopper-v5").agent_overrides()


def _random_replay(env: gym.Env, steps: int, seed: int) -> Replay:
    replay = Replay.empty(steps, env.observation_space.shape[0], env.action_space.shape[0], 0)
    rng = np.random.default_rng(seed)
    episode, (obs, _) = 0, env.reset(seed=seed)
    for i in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        nxt, r, term, trunc, _ = env.step(action)
        replay.add(obs=obs, action=action, reward=r, next_obs=nxt, terminated=term, truncated=trunc,
                   episode=episode, holdout=(i // 7) % 3 == 1)  # holdout blocks cut episodes into segments
        obs = nxt
        if term or trunc:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
    return replay


def test_linear_tv_branches_step_with_each_start_time_and_stop_at_the_last_fitted_step() -> None:
    env = make_env(ENV)
    replay = _random_replay(env, 300, seed=3)
    model = LinearTVDynamics(4, 1)
    model.fit(replay.model_data())
    imagination = ModelImagination.with_known(model, known_functions(ENV, env=env))
    config = RolloutConfig(rollout_batch_size=400, schedule=(0, 1, 3, 3), starts="latest", start_episodes=5)
    rollouts = BranchedRollouts(config, imagination, 4, 1, fit_interval=100)
    agent = NAF(env.observation_space, env.action_space, NAFConfig(hidden=16), seed=0)
    rollouts.rollout(replay, agent, env_step=300, rng=np.random.default_rng(7))
    starts = rollouts._starts(replay, np.random.default_rng(7))  # the same draw
    rows = rollouts.buffer.ordered()

    # by hand: each start's time step within its episode; starts lie in the newest 5 episodes
    ep = replay.episode[:replay.size]
    t0 = np.array([i - np.flatnonzero(ep == ep[i])[0] for i in starts])
    assert ep[starts].min() == ep[-1] - 4
    F, f = model.F, model.f  # (T, obs, obs + act), (T, obs)
    x, t, alive, at = replay.obs[starts].astype(np.float64), t0, np.ones(len(starts), bool), 0
    for j in range(3):
        alive &= t < model.horizon  # nothing past the last fitted step
        n = int(alive.sum())
        block = {k: v[at:at + n] for k, v in rows.items()}
        np.testing.assert_allclose(block["obs"], x[alive], atol=1e-5)
        xu = np.concatenate([block["obs"], block["action"]], axis=1).astype(np.float64)
        hand = np.einsum("bij,bj->bi", F[t[alive]], xu) + f[t[alive]]  # A_t x + B_t u + c_t
        np.testing.assert_allclose(block["next_obs"], hand, rtol=1e-4, atol=1e-5)
        # the same with t = 0 everywhere would be another prediction: the index matters
        if (t[alive] > 0).any():
            wrong = np.einsum("ij,bj->bi", F[0], xu) + f[0]
            assert np.abs(wrong - hand).max() > 1e-4
        x_next = np.full_like(x, np.nan)
        x_next[alive] = block["next_obs"]
        alive[alive] &= block["terminated"] == 0
        x, t, at = x_next, t + 1, at + n
    assert at == rollouts.buffer.size  # every row accounted for
    cut = (t0 + 3 > model.horizon).sum()
    assert cut > 0, "no branch reached the last fitted step: the stop was not exercised"


def _rows(tree, name: str) -> np.ndarray:
    return tree["train"][name].values


@pytest.mark.parametrize("choice", [("--model", "linear-tv"), ("--model", "mlp"), ("--dynamics", "oracle")],
                         ids=["linear-tv", "mlp", "oracle"])
def test_naf_imagination_cli_run(tmp_path, choice: tuple[str, str]) -> None:  # noqa: ANN001
    out = tmp_path / "naf.zarr"
    stop = 40  # InvertedPendulum's random-action episodes last ~5 steps: 40 end between steps 150 and 300
    cfg = _config(tmp_path, agent={"hidden": 32}, model_config={"hidden": 32, "layers": 2} if "mlp" in choice else {},
                  rollout={"rollout_batch_size": 150, "stop_after_episodes": stop}, log_interval=5)
    done = _train(out, "--algo", "naf-imagination", "--env", ENV, *SHORT, *choice, "--config", str(cfg))
    assert done.returncode == 0, done.stderr[-2000:]
    tree = _check_store(out, 400)
    replay = tree["replay"]
    env_step, size, active = _rows(tree, "env_step"), _rows(tree, "model_buffer_size"), _rows(tree, "imagination_active")
    frac = _rows(tree, "model_batch_fraction")
    # episodes complete once n rows are in, by hand from the stored replay
    episode, ends = replay["episode"].values, replay["terminated"].values | replay["truncated"].values
    complete = lambda n: episode[n - 1] + ends[n - 1]  # noqa: E731
    # a train row averages the 5 updates at env steps env_step - 4 .. env_step; the first fit
    # (and rollout) is at step 100, after that step's update
    on = np.array([complete(s) < stop for s in env_step]) & (env_step - 4 > 100)
    off = np.array([complete(s - 4) >= stop for s in env_step])
    assert on.any() and off.any(), "the run did not cross the switch-off"
    assert (active[on] == 1).all() and (active[off] == 0).all()
    np.testing.assert_allclose(frac[on], (64 - int(64 / 11)) / 64)  # 59 imagined rows of NAF's 64
    assert (frac[off] == 0).all()
    # the buffer grew at two fits (steps 100, 150) while on, and not at the fit after the switch
    assert len(np.unique(size[on])) >= 2 and (size[on] > 0).all()
    assert (size[off] == size[on][-1]).all()
