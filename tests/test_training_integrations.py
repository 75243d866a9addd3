"""Issue 19.2: a Lightning fit and a Hugging Face Trainer run (tiny models, a few steps
on CPU) each leave a run with its config, metrics, a model version it made, and the
data version it used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")

import artifactstore  # noqa: E402
from artifactstore.testing.stores import init_quick_store  # noqa: E402

# Lightning 2.6 still calls a torch API that torch 2.13 deprecates (not our code)
pytestmark = pytest.mark.filterwarnings(
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")


def _store(tmp_path: Path) -> str:
    url = str(tmp_path / "store")
    init_quick_store(url)
    return url


def _data(url: str, tmp_path: Path, rows: int = 64) -> str:
    """A small dataset version: one JSON file per row (8 token ids and a label)."""
    folder = tmp_path / "rows"
    folder.mkdir()
    generator = torch.Generator().manual_seed(0)
    for i in range(rows):
        ids = torch.randint(0, 64, (8,), generator=generator).tolist()
        (folder / f"row-{i:03d}.json").write_text(json.dumps({"ids": ids, "label": i % 2}))
    with artifactstore.open(url, "nlp") as store:
        return store.log_artifact(folder, "tokens", type="dataset").ref


def test_a_lightning_fit_records_a_run_its_checkpoints_and_its_input(tmp_path: Path) -> None:
    lightning = pytest.importorskip("lightning", reason="the [lightning] extra is missing")
    from lightning import LightningModule
    from lightning.pytorch.callbacks import ModelCheckpoint

    from artifactstore.integrations.datasets import VersionDataset
    from artifactstore.integrations.lightning import ArtifactstoreLogger

    url = _store(tmp_path)
    data_ref = _data(url, tmp_path)

    def to_tensors(path: str, data: bytes) -> tuple[Any, Any]:
        row = json.loads(data)
        return torch.tensor(row["ids"], dtype=torch.float32), torch.tensor(
            float(row["label"]))

    class Tiny(LightningModule):
        def __init__(self, lr: float = 0.05) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(8, 1)

        def _loss(self, batch: Any) -> Any:
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)

        def training_step(self, batch: Any, index: int) -> Any:
            loss = self._loss(batch)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: Any, index: int) -> None:
            self.log("val_loss", self._loss(batch))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])

    logger = ArtifactstoreLogger(project="nlp", url=url, name="tiny-fit", log_model=True)
    logger.use_artifact(data_ref)
    rows = VersionDataset(data_ref, url=url, project="nlp", transform=to_tensors)
    loader = torch.utils.data.DataLoader(rows, batch_size=16)
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss", save_top_k=2)
    trainer = lightning.Trainer(max_epochs=3, logger=logger, callbacks=[checkpoints],
                                accelerator="cpu", enable_progress_bar=False,
                                enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(Tiny(), loader, loader)

    with artifactstore.open(url, "nlp", create=False) as store:
        (run,) = store.runs()
        assert (run.name, run.status, run.job_type) == ("tiny-fit", "finished", "train")
        assert run.config["lr"] == 0.05
        history = list(store.run_history(run.run_id))
        assert any("train_loss" in row.values for row in history)
        assert sum("val_loss" in row.values for row in history) == 3  # one per epoch
        assert run.inputs == (data_ref,)
        model = f"model-{run.run_id}"
        assert run.outputs
        assert all(ref.startswith(model + ":") for ref in run.outputs)
        best = store.artifact(f"{model}:best")
        assert best.ref in run.outputs
        assert best.metadata["original_filename"] == Path(checkpoints.best_model_path).name
        assert checkpoints.best_model_score is not None
        assert best.metadata["score"] == pytest.approx(float(checkpoints.best_model_score))
        assert [f.path for f in best.files()] == ["model.ckpt"]
        saved = torch.load(best.get_path("model.ckpt", tmp_path / "restored"),
                           weights_only=False)
        assert "state_dict" in saved


def test_a_trainer_run_records_metrics_the_model_and_the_dataset_it_read(
        tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers",
                                       reason="the [huggingface] extra is missing")
    pytest.importorskip("accelerate", reason="the [huggingface] extra is missing")
    from artifactstore.integrations.datasets import VersionDataset
    from artifactstore.integrations.huggingface import ArtifactstoreCallback

    url = _store(tmp_path)
    data_ref = _data(url, tmp_path, rows=32)

    def to_features(path: str, data: bytes) -> dict[str, Any]:
        row = json.loads(data)
        return {"input_ids": torch.tensor(row["ids"]),
                "attention_mask": torch.ones(8, dtype=torch.long),
                "labels": torch.tensor(row["label"])}

    config = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=4, logging_steps=1, report_to=[],
        use_cpu=True, save_strategy="no", per_device_train_batch_size=8, disable_tqdm=True)
    callback = ArtifactstoreCallback(project="nlp", url=url, name="tiny-bert")
    rows = VersionDataset(data_ref, url=url, project="nlp", transform=to_features)
    transformers.Trainer(model=model, args=args, train_dataset=rows,
                         callbacks=[callback]).train()

    with artifactstore.open(url, "nlp", create=False) as store:
        (run,) = store.runs()
        assert (run.name, run.status) == ("tiny-bert", "finished")
        assert run.config["args"]["max_steps"] == 4
        assert run.config["model"]["hidden_size"] == 16
        history = list(store.run_history(run.run_id))
        assert [row.step for row in history if "loss" in row.values] == [1, 2, 3, 4]
        assert "train_runtime" in run.summary
        assert run.inputs == (data_ref,)  # found on the Trainer's dataloader
        assert callback.model_version is not None
        assert run.outputs == (callback.model_version.ref,)
        files = {f.path for f in callback.model_version.files()}
        assert {"config.json", "model.safetensors"} <= files
        restored = transformers.BertForSequenceClassification.from_pretrained(
            callback.model_version.download(tmp_path / "model"))
        assert restored.config.hidden_size == 16
