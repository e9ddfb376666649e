"""The app reads stores only: it never imports torch or the training code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from app_helpers import MAIN, REPO

APP = REPO / "app"
FORBIDDEN = ("torch", "engine.envs", "engine.studies", "engine.models", "engine.agents")

PROBE = """
import importlib, json, sys
from pathlib import Path
app_dir = Path(sys.argv[1])
scripts = {app_dir / "main.py", *app_dir.glob("views/*.py")}
for path in sorted(app_dir.rglob("*.py")):
    if path in scripts:
        continue  # Streamlit scripts: run below, as the app runs them
    rel = path.relative_to(app_dir.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    importlib.import_module(".".join(parts))
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[2], default_timeout=60).run()
errors = [e.value for e in at.exception]
charts = {}
for view in sorted(p.stem for p in (app_dir / "views").glob("*.py") if p.stem != "home"):
    at.switch_page(f"views/{view}.py").run()
    errors += [e.value for e in at.exception]
    charts[view] = len(at.get("plotly_chart"))
print(json.dumps({"modules": sorted(sys.modules), "errors": errors, "charts": charts}))
"""


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_app_runtime_imports_no_training_code(bundled_store: Path) -> None:  # noqa: ARG001
    env = {k: v for k, v in os.environ.items() if k != "MBRL_WORKBENCH_DATASETS"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(APP), str(MAIN)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["charts"]["gradient_error"] == 2, "the gradient page must really have run"
    modules = result["modules"]
    assert "engine.record" in modules and "app.studies.gradient_error" in modules
    assert {"app.studies.learning_curves", "app.studies.model_error", "app.studies.q_accuracy"} <= set(modules)
    assert [m for m in modules if _forbidden(m)] == []


def test_app_source_imports_no_training_code() -> None:
    """Also catches imports inside functions, which the runtime probe may not reach."""
    offenders = []
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if _forbidden(n)]
            engine = [n for n in names if n == "engine" or n.startswith("engine.")]
            offenders += [
                f"{path.relative_to(REPO)}: {n} (the app may import only engine.record)"
                for n in engine if not (n == "engine.record" or n.startswith("engine.record."))
            ]
    assert offenders == []
