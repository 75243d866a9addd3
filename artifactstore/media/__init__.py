"""Media values for ``run.log()``, named as W&B users know them (docs/design.md §12.7).

Each value turns itself into the bytes of its file(s) and the facts of its
reference (:mod:`artifactstore.media.base`); the run stores the files as versions of
its media artifact (:mod:`artifactstore.runs.mediastage`). Optional libraries load
when a value needs them, with one-line errors naming the extra.
"""

from artifactstore.media.audio import Audio
from artifactstore.media.base import MediaValue, Rendered, is_file_reference, is_reference
from artifactstore.media.histogram import Histogram
from artifactstore.media.image import Image
from artifactstore.media.plot import Plot
from artifactstore.media.table import Table
from artifactstore.media.text import Html, Text
from artifactstore.media.video import Video

__all__ = [
    "Audio", "Histogram", "Html", "Image", "MediaValue", "Plot", "Rendered", "Table", "Text",
    "Video", "is_file_reference", "is_reference",
]  # fmt: skip
