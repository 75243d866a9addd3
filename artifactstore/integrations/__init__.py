"""Where artifactstore meets the tools ML code already uses (issue 19): each module
needs its own extra and imports it at its top, so importing ``artifactstore`` never
loads them.

- ``datasets``: PyTorch datasets over a version's files, read through the store
  (``pip install 'artifactstore[torch]'``);
- ``lightning``: a PyTorch Lightning logger (``[lightning]``);
- ``huggingface``: a Hugging Face ``transformers`` ``TrainerCallback`` (``[huggingface]``).
"""
