"""A PyTorch Lightning logger that records to artifactstore (``pip install
'artifactstore[lightning]'``)::

    import lightning as L
    from artifactstore.integrations.lightning import ArtifactstoreLogger

    logger = ArtifactstoreLogger(project="vision", job_type="train", log_model=True)
    logger.use_artifact("images:production")          # the data, as an input of the run
    trainer = L.Trainer(logger=logger, callbacks=[L.pytorch.callbacks.ModelCheckpoint(
        monitor="val_loss", save_top_k=2)], max_epochs=10)
    trainer.fit(model, datamodule)

It is one run of the store: hyperparameters go to the run's config, metrics to its
history (with Lightning's step), and checkpoints become versions of the model artifact
``model-<run id>`` (or ``checkpoint_name``) made by the run, each holding ``model.ckpt``,
with the alias ``best`` on the checkpoint callback's best one (``latest`` is always the
newest). ``log_model=True`` logs them when training ends, ``"all"`` as each is saved,
False never. The run ends ``finished``, or ``failed`` when the fit failed or was
interrupted. Only rank zero records (Lightning's ``rank_zero_only``).
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import artifactstore
from artifactstore.core.errors import InvalidInputError, MissingExtraError

try:
    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers.logger import Logger
    from lightning.pytorch.utilities import rank_zero_only
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("the Lightning logger needs lightning: "
                            "pip install 'artifactstore[lightning]'") from exc

__all__ = ["ArtifactstoreLogger"]


class ArtifactstoreLogger(Logger):
    """Lightning's ``Logger`` over one artifactstore run (see the module's example).

    ``project``/``url`` name the store (discovered when None), ``name``, ``job_type``,
    ``tags`` and ``config`` start the run (as ``artifactstore.init``); ``run`` is an
    already started run to record to instead (the logger then does not finish it).
    """

    def __init__(self, project: str | None = None, name: str | None = None, *,
                 job_type: str | None = "train", tags: list[str] | None = None,
                 config: Mapping[str, Any] | None = None, url: str | None = None,
                 log_model: bool | str = True, checkpoint_name: str | None = None,
                 run: Any = None) -> None:
        super().__init__()
        if log_model not in (True, False, "all"):
            raise InvalidInputError(f"log_model is True, False or 'all', not {log_model!r}")
        self._settings: dict[str, Any] = {"project": project, "name": name, "job_type": job_type,
                          "tags": tags, "config": dict(config or {}), "url": url}
        self._log_model = log_model
        self._checkpoint_name = checkpoint_name
        self._run = run
        self._owns_run = run is None
        self._logged: dict[str, float] = {}  # checkpoint path -> its mtime when logged
        self._callbacks: dict[int, ModelCheckpoint] = {}

    # -- what Lightning asks ----------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self._settings["project"] or "artifactstore")

    @property
    def version(self) -> str:
        return str(self.experiment.id)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The artifactstore run (started on first use)."""
        if self._run is None:
            self._run = artifactstore.init(**self._settings)
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any,
                        **kwargs: Any) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        self.experiment.config.update({k: _plain(v) for k, v in values.items()})

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        row = {k: _plain(v) for k, v in metrics.items() if k != "epoch"}
        if "epoch" in metrics:
            row["epoch"] = _plain(metrics["epoch"])
        self.experiment.log(row, step=step)

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        self._callbacks[id(checkpoint_callback)] = checkpoint_callback
        if self._log_model == "all":
            self._log_checkpoints(checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run is None:
            return  # nothing was ever logged: no run was started
        if status == "success" and self._log_model is True:
            for callback in self._callbacks.values():
                self._log_checkpoints(callback)
        if self._owns_run:
            self._run.finish(exit_code=0 if status == "success" else 1)

    # -- ours ----------------------------------------------------------------------------

    def use_artifact(self, ref: str, type: str | None = None) -> Any:
        """Record the version ``ref`` as an input of the run; returns it (read it with
        ``.download()`` or a dataset from :mod:`.datasets`)."""
        return self.experiment.use_artifact(ref, type=type)

    @rank_zero_only
    def _log_checkpoints(self, callback: ModelCheckpoint) -> None:
        """Every checkpoint file ``callback`` holds that is new or rewritten since it was
        logged, oldest first; ``best`` goes on the callback's best one."""
        found: dict[str, float | None] = {}
        for path, score in getattr(callback, "best_k_models", {}).items():
            found[path] = _plain(score)
        for path, score in ((callback.last_model_path, callback.current_score),
                            (callback.best_model_path, callback.best_model_score)):
            if path:
                found[path] = _plain(score)
        pending = sorted((Path(p).stat().st_mtime, p) for p in found if Path(p).is_file())
        for mtime, path in pending:
            if self._logged.get(path) == mtime:
                continue
            run = self.experiment
            metadata = {"score": found[path], "original_filename": Path(path).name,
                        "monitor": callback.monitor, "mode": callback.mode}
            artifact = artifactstore.Artifact(
                self._checkpoint_name or f"model-{run.id}", "model", metadata=metadata)
            artifact.add_file(path, name="model.ckpt")
            best = path == callback.best_model_path
            run.log_artifact(artifact, aliases=["best"] if best else [], role="checkpoint")
            self._logged[path] = mtime


def _plain(value: Any) -> Any:
    """A tensor or numpy scalar as a Python number; other values unchanged."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return item()
    return value
