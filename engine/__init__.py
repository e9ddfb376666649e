"""mbrl-workbench engine: environments, models, agents, studies, and the run store they write.

Importing `engine` is cheap and torch-free: the app imports `open_run` from here.
"""

from engine.record import StoreError, open_run

__all__ = ["StoreError", "open_run"]
