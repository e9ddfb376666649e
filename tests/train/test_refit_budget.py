"""Study 1's model (record_model on a preset that does not use a model) gets a fixed refit budget;
models the agent uses are fitted to early stopping as before."""

from __future__ import annotations

import pytest

from engine.train.config import TrainConfig
from engine.train.loop import _model_config


def test_the_record_only_model_is_capped_with_user_overrides_kept() -> None:
    cfg = TrainConfig(algo="sac", record_model_updates=123, model_config={"hidden": 64})
    model_cfg = _model_config("mlp", cfg)
    assert model_cfg.fit.max_updates == 123 and model_cfg.hidden == 64
    assert _model_config("mlp", TrainConfig(algo="ddpg")).fit.max_updates == TrainConfig().record_model_updates


@pytest.mark.parametrize("algo", ["mve-sac", "mve-ddpg", "sac-svg", "maac"])
def test_models_the_agent_uses_are_not_capped(algo: str) -> None:
    cfg = TrainConfig(algo=algo)
    model_cfg = _model_config(cfg.model, cfg)
    assert model_cfg is None or model_cfg.fit.max_updates is None


def test_no_cap_when_asked_and_bad_caps_refused() -> None:
    assert _model_config("mlp", TrainConfig(algo="sac", record_model_updates=None)) is None
    with pytest.raises(ValueError, match="record_model_updates"):
        TrainConfig(record_model_updates=0)
