"""MBPO's parts on real data: schedule and buffer formulas, the FIFO buffer, the real/model
mix, branches that stop at predicted terminations, and a killed run that resumes its buffer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from test_train_cli import MBPO, _check_store, _config, _train

from engine import open_run
from engine.agents import SAC, SACConfig
from engine.envs.factory import make_env, sim_state_fns
from engine.models import make_dynamics
from engine.models.ensemble import EnsembleConfig, GaussianEnsemble, SpreadTracking
from engine.models.known import known_functions
from engine.models.training import FitConfig
from engine.record import RunWriter
from engine.train import checkpoint
from engine.train.branched import BranchedRollouts, ModelBuffer, RolloutConfig, mixed_batch
from engine.train.config import TrainConfig
from engine.train.loop import Trainer
from engine.train.open_loop import open_loop, open_loop_errors
from engine.train.replay import Replay
from engine.train.run import REPLAY_FIELDS
from engine.train.targets import make_imagination

ENV = "InvertedPendulum-v5"


def test_rollout_length_schedule_and_buffer_capacity_follow_mbpo():
    hopper = TrainConfig(algo="mbpo", env_id="Hopper-v5").rollout_config()
    assert hopper.schedule == (20, 100, 1, 15)
    # k = 1 up to epoch 20, then min + (epoch - 20) / 80 * 14 truncated, 15 from epoch 100 on
    cases = [(0, 1), (20_999, 1), (21_000, 1), (26_000, 2), (60_000, 8), (99_999, 14), (100_000, 15), (500_000, 15)]
    for step, k in cases:
        epoch = step // 1000
        expected = 1 if epoch <= 20 else int(min((epoch - 20) / 80, 1) * 14 + 1)
        assert hopper.length(step) == k == expected, step
    # MBPO's code: retain_epochs x k x rollout_batch_size x epoch_length / model_train_freq
    assert hopper.capacity(1, 250) == 400_000 and hopper.capacity(15, 250) == 6_000_000
    assert RolloutConfig(retain_epochs=3, rollout_batch_size=10, epoch_length=100).capacity(2, 50) == 3 * 2 * 10 * 2
    assert TrainConfig(algo="mbpo", env_id="Pendulum-v1").rollout_config().schedule == (20, 100, 1, 1)
    cfg = TrainConfig(algo="mbpo", env_id=ENV)
    assert (cfg.model_fit_interval, cfg.updates_per_step, cfg.start_steps) == (250, 5, 5000)
    assert cfg.full()["rollout"]["schedule"] == [1, 15, 1, 1]
    with pytest.raises(ValueError, match="mbpo"):
        TrainConfig(algo="sac", rollout={"real_ratio": 0.5})
    with pytest.raises(ValueError, match="schedule"):
        RolloutConfig(schedule=(5, 5, 1, 2))


def test_model_buffer_is_a_fifo_that_keeps_the_newest_rows_when_resized():
    buf = ModelBuffer(obs_dim=2, act_dim=1, capacity=5)
    rows = lambda a, b: {"obs": np.arange(a, b, dtype=np.float32)[:, None].repeat(2, 1),  # noqa: E731
                         "action": np.zeros((b - a, 1), np.float32), "reward": np.arange(a, b, dtype=np.float32),
                         "next_obs": np.zeros((b - a, 2), np.float32), "terminated": np.zeros(b - a, np.float32)}
    buf.add(**rows(0, 3))
    buf.add(**rows(3, 7))  # wraps: 0 and 1 are dropped
    assert buf.size == 5 and list(buf.ordered()["reward"]) == [2, 3, 4, 5, 6]
    buf.add(**rows(7, 20))  # more rows than room: only the last five stay
    assert list(buf.ordered()["reward"]) == [15, 16, 17, 18, 19]
    buf.resize(3)
    assert list(buf.ordered()["reward"]) == [17, 18, 19]
    buf.resize(6)
    buf.add(**rows(20, 22))
    assert list(buf.ordered()["reward"]) == [17, 18, 19, 20, 21]
    copy = ModelBuffer(2, 1)
    copy.load_state_dict(buf.state_dict())
    assert copy.capacity == 6 and all(np.array_equal(copy.ordered()[k], v) for k, v in buf.ordered().items())
    buf.add(**rows(22, 25))  # wrapped: the oldest row is no longer in slot 0
    assert buf.ptr == 2 and list(buf.ordered()["reward"]) == [19, 20, 21, 22, 23, 24]
    copy.load_state_dict(buf.state_dict())  # a resumed run's buffer: the same rows in the same slots,
    draw = lambda b: b.sample(50, np.random.default_rng(3))["reward"]  # noqa: E731
    np.testing.assert_array_equal(draw(copy), draw(buf))  # so the same generator draws the same batch
    for b in (buf, copy):
        b.add(**rows(25, 27))  # and it goes on overwriting the oldest
    assert list(copy.ordered()["reward"]) == list(buf.ordered()["reward"]) == [21, 22, 23, 24, 25, 26]
    old = {k: v for k, v in buf.state_dict().items() if k != "ptr"}  # a checkpoint from before "ptr"
    copy.load_state_dict(old)
    assert list(copy.ordered()["reward"]) == [21, 22, 23, 24, 25, 26] and copy.ptr == 0


def _real_replay(steps: int = 300, seed: int = 0) -> Replay:
    """Random-action InvertedPendulum transitions with simulator states, as the loop stores them."""
    env = make_env(ENV)
    get_sim, _, sim_dim = sim_state_fns(env)
    replay = Replay.empty(steps, 4, 1, sim_dim)
    obs, _ = env.reset(seed=seed)
    episode = 0
    for _ in range(steps):
        sim, action = get_sim(), env.action_space.sample()
        nxt, r, term, trunc, _ = env.step(action)
        replay.add(obs=obs, action=action, reward=r, next_obs=nxt, terminated=term, truncated=trunc, episode=episode,
                   policy_version=0, holdout=False, sim_state=sim, next_sim_state=get_sim())
        obs = nxt
        if term or trunc:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
    return replay


def test_batches_mix_real_and_model_rows_at_the_real_ratio():
    replay = _real_replay(100)
    replay.reward[:100] = 1.0  # real rows are marked +1, model rows -1
    buf = ModelBuffer(4, 1, capacity=50)
    buf.add(obs=np.zeros((50, 4), np.float32), action=np.zeros((50, 1), np.float32), reward=-np.ones(50, np.float32),
            next_obs=np.zeros((50, 4), np.float32), terminated=np.zeros(50, np.float32))
    rng = np.random.default_rng(0)
    for batch_size, ratio in [(256, 0.05), (100, 0.5), (64, 0.0), (64, 1.0)]:
        b = mixed_batch(replay, buf, batch_size, ratio, rng)
        n_real = int(batch_size * ratio)
        assert b.obs.shape == (batch_size, 4) and b.terminated.dtype == torch.float32
        assert (b.reward == 1).sum() == n_real and (b.reward == -1).sum() == batch_size - n_real
    assert (mixed_batch(replay, ModelBuffer(4, 1, capacity=50), 64, 0.05, rng).reward == 1).all()  # empty: all real


@pytest.mark.parametrize("dynamics", ["oracle", "ensemble"])
def test_branches_stop_at_a_predicted_termination(dynamics):
    torch.manual_seed(0)
    replay = _real_replay()
    env = make_env(ENV)
    agent = SAC(env.observation_space, env.action_space, SACConfig(hidden=32), seed=0)
    cfg = TrainConfig(algo="mbpo", env_id=ENV, dynamics="oracle" if dynamics == "oracle" else "learned")
    spread = None
    if dynamics == "oracle":
        model = make_dynamics("oracle", env.observation_space, env.action_space, ENV)
    else:
        model = GaussianEnsemble(4, 1, EnsembleConfig(members=3, elites=2, hidden=32, layers=2,
                                                      fit=FitConfig(max_epochs=5)))
        model.fit(replay.model_data())
        spread = SpreadTracking(model)
    k = 40  # long enough that an untrained policy drops the pole in most branches
    rc = RolloutConfig(rollout_batch_size=64, schedule=(0, 1, k, k), epoch_length=10, chunk=25)
    branched = BranchedRollouts(rc, make_imagination(cfg, spread or model), 4, 1, fit_interval=10, spread=spread)
    branched.rollout(replay, agent, env_step=100, rng=np.random.default_rng(0))
    rows = branched.buffer.ordered()
    assert branched.buffer.capacity == k * 64 and branched.buffer.size == round(branched.mean_length * 64)
    ended = rows["terminated"] == 1
    assert ended.any() and branched.mean_length < k  # some branches did end early
    # the flag is the env's termination function of the predicted next state
    known = known_functions(ENV).terminated(torch.as_tensor(rows["next_obs"])).numpy()
    np.testing.assert_array_equal(ended, known)
    # a terminal next state never starts another step; every other one does (until step k)
    starts = {r.tobytes() for r in rows["obs"]}
    assert not any(r.tobytes() in starts for r in rows["next_obs"][ended])
    continued = np.array([r.tobytes() in starts for r in rows["next_obs"][~ended]])
    assert continued.sum() == (~ended).sum() - (64 - ended.sum())  # branches alive after k steps stop there
    assert known_functions(ENV).terminated(torch.as_tensor(rows["obs"])).sum() == 0
    if spread is not None:
        assert np.isfinite(branched.disagreement) and branched.disagreement > 0
    else:
        assert np.isnan(branched.disagreement)


def test_killed_mbpo_run_resumes_with_its_model_buffer(tmp_path, kill_after_commit):
    out = tmp_path / "run.zarr"
    cfg = _config(tmp_path, **MBPO)
    args = ["--algo", "mbpo", "--env", ENV, "--steps", "400", "--start-steps", "100", "--model-start-steps", "100",
            "--snapshot-interval", "200", "--config", str(cfg)]
    kill_after_commit(["train", "--out", str(out), *args], out, "replay", 200)
    n_partial = open_run(out)["replay"].sizes["step"]
    assert 200 <= n_partial < 400
    # the checkpoint carries the model buffer, and a trainer restored from it (on a copy of the
    # store) holds exactly that buffer
    ckpt = checkpoint.latest(out, n_partial)
    saved = torch.load(ckpt, weights_only=True)["extras"]["branched"]["buffer"]
    assert 0 < len(saved["obs"]) <= saved["capacity"]
    copy = tmp_path / "copy.zarr"
    shutil.copytree(out, copy)
    tc = TrainConfig.from_dict({**json.loads(cfg.read_text()), "algo": "mbpo", "env_id": ENV, "steps": 400,
                                "start_steps": 100, "model_start_steps": 100, "snapshot_interval": 200})
    writer = RunWriter.resume(copy)
    try:
        trainer = Trainer(tc, writer)
        writer.rollback(checkpoint.committed(ckpt))
        replay = open_run(copy, check_values=False)["replay"]
        trainer.restore(ckpt, {k: replay[k].values for k in REPLAY_FIELDS})
        for k, v in trainer.branched.buffer.ordered().items():
            np.testing.assert_array_equal(v, saved[k].numpy())
        assert trainer.branched.buffer.capacity == saved["capacity"]
    finally:
        writer.close(status="running")
    res = _train(out, *args, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    tree = _check_store(out, 400)
    assert list(tree["eval"]["env_step"].values) == [200, 400]
    assert np.isfinite(tree["train"]["ensemble_disagreement"].values[-5:]).all()


def test_open_loop_disagreement_is_the_elites_spread_along_the_rollout():
    replay = _real_replay(200)
    model = GaussianEnsemble(4, 1, EnsembleConfig(members=4, elites=3, hidden=32, layers=2, step_mode="mean",
                                                  fit=FitConfig(max_epochs=3)))
    model.fit(replay.model_data())
    starts, H = np.array([0, 20, 40, -1]), 3
    std = replay.next_obs[:200].std(0)
    result = open_loop(model, replay, starts, H, std)
    err, _ = open_loop_errors(model, replay, starts, H, std)
    np.testing.assert_array_equal(result.error, err)
    assert np.isnan(result.disagreement[-1]).all()  # padding stays padding
    # by hand: "mean" mode moves to the elites' mean; the spread is taken where the rollout is
    obs = torch.as_tensor(replay.obs[starts[:3]])
    elites = model.elites
    with torch.no_grad():
        for h in range(H):
            mean, _ = model.predict_members(obs, torch.as_tensor(replay.action[starts[:3] + h]))
            m = mean[elites].double()  # (elites, batch, obs_dim)
            by_hand = ((m - m.mean(0)).pow(2).sum(0) / (len(elites) - 1)).sqrt().norm(dim=-1)
            np.testing.assert_allclose(result.disagreement[:3, h], by_hand.numpy(), rtol=1e-5)
            obs = mean[elites].mean(0)
    assert (result.disagreement[:3] > 0).all()
    # a model without elites has none
    mlp = make_dynamics("mlp", make_env(ENV).observation_space, make_env(ENV).action_space, ENV)
    mlp.fit(replay.model_data())
    assert np.isnan(open_loop(mlp, replay, starts, H, std).disagreement).all()
