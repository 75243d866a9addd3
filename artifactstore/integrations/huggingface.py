"""A Hugging Face ``transformers`` ``TrainerCallback`` that records to artifactstore
(``pip install 'artifactstore[huggingface]'``)::

    from transformers import Trainer
    from artifactstore.integrations.huggingface import ArtifactstoreCallback

    callback = ArtifactstoreCallback(project="nlp", inputs=["reviews:production"])
    trainer = Trainer(model=model, args=args, train_dataset=train, callbacks=[callback])
    trainer.train()
    print(callback.model_version.ref)                 # e.g. model-3f2a...:v0

One training is one run of the store: the ``TrainingArguments`` and the model's
config go to the run's config (``args`` and ``model``), every log line of the Trainer to
its history at the Trainer's global step (the closing summary, ``train_runtime`` and
the like, to the run's summary), the versions in ``inputs`` and the dataset the Trainer
reads, when it is a :class:`~.datasets.VersionDataset`, to its inputs. When training
ends the model (and the tokenizer or processor, when the Trainer has one) is saved with
``save_pretrained`` and logged as a version of ``model_name`` (default ``model-<run
id>``), type ``model``, made by the run; ``log_model=False`` skips it. Only the main
process records.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import Any

import artifactstore
from artifactstore.core.errors import MissingExtraError

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("the Trainer callback needs transformers: "
                            "pip install 'artifactstore[huggingface]'") from exc

__all__ = ["ArtifactstoreCallback"]

#: keys of the Trainer's last log line: facts about the whole training, not a step
_SUMMARY_KEYS = frozenset({"train_runtime", "train_samples_per_second",
                           "train_steps_per_second", "total_flos", "train_loss"})


class ArtifactstoreCallback(TrainerCallback):
    """See the module's example. ``project``/``url`` name the store (discovered when
    None); ``name``, ``job_type``, ``tags`` start the run; ``run`` records to a run
    already started (then not finished here)."""

    def __init__(self, project: str | None = None, name: str | None = None, *,
                 job_type: str | None = "train", tags: list[str] | None = None,
                 url: str | None = None, inputs: Iterable[str] = (),
                 log_model: bool = True, model_name: str | None = None,
                 run: Any = None) -> None:
        self._settings: dict[str, Any] = {"project": project, "name": name, "job_type": job_type,
                          "tags": tags, "url": url}
        self._inputs = list(inputs)
        self._log_model = log_model
        self._model_name = model_name
        self.run = run
        self._owns_run = run is None
        #: the model version logged when training ended (None before, or without one)
        self.model_version: Any = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        model = kwargs.get("model")
        config = {"args": _plain_dict(args.to_dict())}  # type: ignore[no-untyped-call]
        model_config = getattr(model, "config", None)
        if model_config is not None and hasattr(model_config, "to_dict"):
            config["model"] = _plain_dict(model_config.to_dict())
        if self.run is None:
            self.run = artifactstore.init(config=config, **self._settings)
        else:
            self.run.config.update(config)
        refs = list(self._inputs)
        dataset = getattr(kwargs.get("train_dataloader"), "dataset", None)
        ref = getattr(dataset, "ref", None)
        if isinstance(ref, str) and ref not in refs and type(dataset).__module__.startswith(
                "artifactstore."):
            refs.append(ref)
        for ref in refs:
            self.run.use_artifact(ref)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self.run is None or not logs:
            return
        values = {k: v for k, v in logs.items() if isinstance(v, int | float | str | bool)}
        summary = {k: v for k, v in values.items() if k in _SUMMARY_KEYS}
        row = {k: v for k, v in values.items() if k not in _SUMMARY_KEYS}
        if summary:
            self.run.summary.update(summary)
        if row and not (summary and set(row) <= {"epoch"}):
            self.run.log(row, step=state.global_step)

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self.run is None:
            return
        model = kwargs.get("model")
        if self._log_model and model is not None and hasattr(model, "save_pretrained"):
            with tempfile.TemporaryDirectory(prefix="artifactstore-model-") as folder:
                model.save_pretrained(folder)
                processor = kwargs.get("processing_class") or kwargs.get("tokenizer")
                if processor is not None and hasattr(processor, "save_pretrained"):
                    processor.save_pretrained(folder)
                self.model_version = self.run.log_artifact(
                    folder, name=self._model_name or f"model-{self.run.id}", type="model",
                    metadata={"global_step": state.global_step,
                              "architecture": type(model).__name__}, role="model")
        if self._owns_run:
            self.run.finish()


def _plain_dict(values: dict[str, Any]) -> dict[str, Any]:
    """The entries a run's config can hold: numbers, strings, bools, None, and lists
    and dicts of those; anything else (enums, devices, callables) as its ``str``."""
    return {str(k): _plain(v) for k, v in values.items()}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return _plain_dict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
