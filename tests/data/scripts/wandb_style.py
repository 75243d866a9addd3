"""A training script written against W&B's documented run and artifact calls. The only
line changed to run it on artifactstore is the import (tests/test_wandb_surface.py)."""

import pathlib
import sys

import artifactstore as wandb  # was: import wandb

workdir = pathlib.Path(sys.argv[1])

# --- prepare a dataset: one run logs it ------------------------------------------------
with wandb.init(project="mnist-demo", job_type="prepare") as run:
    (workdir / "data").mkdir(exist_ok=True)
    (workdir / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (workdir / "data" / "labels.txt").write_text("cat\ndog\n")
    dataset = wandb.Artifact("mnist", type="dataset", description="a tiny split",
                             metadata={"rows": 2})
    dataset.add_dir(str(workdir / "data"))
    with dataset.new_file("README.md") as readme:
        readme.write("made by wandb_style.py\n")
    run.log_artifact(dataset, aliases=["latest", "raw"])

# --- train: config, metrics, summary, a model ------------------------------------------
run = wandb.init(project="mnist-demo", job_type="train", name="lenet-1",
                 config={"lr": 0.1, "epochs": 3}, tags=["baseline"], notes="first try",
                 group="sweep-1")
wandb.config.batch_size = 32                      # attribute access, recorded
wandb.config.update({"optimizer": "sgd"})
run.config["lr"] = 0.05                           # item access, recorded
data = run.use_artifact("mnist:latest", type="dataset")
data_dir = data.download(str(workdir / "downloaded"))
assert (pathlib.Path(data_dir) / "train.csv").read_text() == "x,y\n1,2\n3,4\n"
for epoch in range(run.config.epochs):
    wandb.log({"epoch": epoch}, commit=False)     # merged into the next row
    wandb.log({"loss": 1.0 / (epoch + 1), "acc": 0.5 + epoch / 10})
run.summary["best_acc"] = 0.7
(workdir / "model.pt").write_bytes(b"weights" * 100)
model = wandb.Artifact("lenet", type="model")
model.add_file(str(workdir / "model.pt"))
wandb.log_artifact(model, aliases=["best"])
wandb.finish()

# --- evaluate in another run: reads the model back --------------------------------------
with wandb.init(project="mnist-demo", job_type="eval") as run:
    weights = run.use_artifact("lenet:best")
    weights.verify(weights.download(str(workdir / "weights")))
    assert [f.path for f in weights.files()] == ["model.pt"]
    entry = weights.get_entry("model.pt")
    assert (entry.path, entry.size) == ("model.pt", 700)
    assert pathlib.Path(entry.download(str(workdir / "one"))).read_bytes() == b"weights" * 100
    wandb.log({"test_acc": 0.69})
print("done")
