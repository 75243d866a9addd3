"""The media values of ``run.log()`` (docs/design.md §12.7): what each one turns into
(bytes and facts), the errors users meet, and the one-line errors naming the extra when
an optional library is missing (simulated in a subprocess that blocks the import)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

import artifactstore
from artifactstore import Audio, Histogram, Html, Image, Plot, Table, Text, Video
from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import InvalidInputError, MissingExtraError, NotFoundError
from artifactstore.media.base import MAX_INLINE_TEXT, is_file_reference, is_reference
from artifactstore.testing.stores import init_quick_store

PIL = pytest.importorskip("PIL.Image", reason="the test extra installs Pillow")


def check_file(rendered: artifactstore.media.Rendered, kind: str, fmt: str, key: str,
               step: int) -> bytes:
    ref = rendered.reference
    data = rendered.files[ref["path"]]
    assert ref["_type"] == kind
    assert ref["format"] == fmt
    assert ref["digest"] == hash_bytes(data).hex
    assert ref["size"] == len(data)
    assert ref["path"].startswith(f"{key}/{step:012d}-{ref['digest'][:16]}.")
    assert is_file_reference(ref)
    return data


# -- Image -------------------------------------------------------------------------------


def test_an_image_from_uint8_is_a_png_that_decodes_to_the_same_pixels() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    rendered = Image(pixels, caption="cat").render("val/img", 40)
    data = check_file(rendered, "image", "png", "val/img", 40)
    assert rendered.reference["width"] == 5
    assert rendered.reference["height"] == 7
    assert rendered.reference["caption"] == "cat"
    assert (np.asarray(PIL.open(io.BytesIO(data))) == pixels).all()


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1), (4, 6, 4)])
def test_an_image_takes_grey_and_alpha_arrays(shape: tuple[int, ...]) -> None:
    pixels = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    data = check_file(Image(pixels).render("g", 0), "image", "png", "g", 0)
    back = np.asarray(PIL.open(io.BytesIO(data)))
    assert (back == pixels.reshape(back.shape)).all()


def test_a_float_image_is_scaled_from_0_1() -> None:
    floats = np.array([[0.0, 0.5, 1.0]])
    data = Image(floats).data
    assert np.asarray(PIL.open(io.BytesIO(data))).tolist() == [[0, 128, 255]]


@pytest.mark.parametrize(("array", "message"), [
    (np.full((2, 2), 1.5), "in \\[0, 1\\]"),
    (np.full((2, 2), np.nan), "in \\[0, 1\\]"),
    (np.zeros((2, 2), dtype=np.int32), "uint8 or float"),
    (np.zeros((2, 2, 2), dtype=np.uint8), "HxW"),
    (np.zeros((0, 3), dtype=np.uint8), "empty"),
])
def test_bad_image_arrays_are_refused(array: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Image(array)


def test_an_image_from_pil_and_from_files(tmp_path: Path) -> None:
    picture = PIL.new("RGB", (9, 4), (10, 20, 30))
    assert Image(picture).render("p", 1).reference["width"] == 9
    for fmt, name in (("PNG", "png"), ("JPEG", "jpeg"), ("GIF", "gif")):
        path = tmp_path / f"x.{name}"
        picture.save(path, format=fmt)
        rendered = Image(path).render("f", 2)
        assert check_file(rendered, "image", name, "f", 2) == path.read_bytes()  # as it is
        assert (rendered.reference["width"], rendered.reference["height"]) == (9, 4)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match="not PNG, JPEG or GIF"):
        Image(tmp_path / "notes.txt")
    with pytest.raises(NotFoundError, match="does not exist"):
        Image(str(tmp_path / "missing.png"))
    with pytest.raises(InvalidInputError, match="numpy array, a PIL image or a file path"):
        Image(3)


def test_masks_are_png_files_and_boxes_json_facts() -> None:
    boxes = {"pred": {"box_data": [{"position": {"minX": 0.1, "maxX": 0.5, "minY": 0.2,
                                                  "maxY": 0.6}, "class_id": 1,
                                     "scores": {"p": np.float32(0.5)}}],
                      "class_labels": {1: "cat"}}}
    mask = np.array([[0, 1], [1, 2]], dtype=np.int64)
    rendered = Image(np.zeros((2, 2), np.uint8), boxes=boxes,
                     masks={"truth": {"mask_data": mask, "class_labels": {1: "cat"}}}
                     ).render("seg", 3)
    ref = rendered.reference
    assert ref["boxes"]["pred"]["box_data"][0]["scores"] == {"p": 0.5}
    assert ref["boxes"]["pred"]["class_labels"] == {"1": "cat"}
    truth = ref["masks"]["truth"]
    assert truth["class_labels"] == {"1": "cat"}
    assert is_file_reference(truth)
    assert np.asarray(PIL.open(io.BytesIO(rendered.files[truth["path"]]))).tolist() == [[0, 1],
                                                                                      [1, 2]]
    assert len(rendered.files) == 2
    with pytest.raises(InvalidInputError, match="mask_data"):
        Image(np.zeros((2, 2), np.uint8), masks={"m": {"data": mask}})


# -- Audio, Video ------------------------------------------------------------------------


def test_audio_from_an_array_is_16_bit_wav() -> None:
    clip = np.sin(np.linspace(0, 100, 8000)) * 0.5
    rendered = Audio(clip, sample_rate=8000, caption="tone").render("sound", 5)
    data = check_file(rendered, "audio", "wav", "sound", 5)
    assert rendered.reference["sample_rate"] == 8000
    assert rendered.reference["duration"] == 1.0
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (
            1, 2, 8000, 8000)
        samples = np.frombuffer(w.readframes(8000), dtype="<i2")
    assert (samples == np.round(clip * 32767).astype(np.int16)).all()
    stereo = np.zeros((100, 2), dtype=np.int16)
    assert Audio(stereo, sample_rate=100).duration == 1.0


def test_audio_refusals_and_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="sample_rate"):
        Audio(np.zeros(10))
    with pytest.raises(InvalidInputError, match="\\[-1, 1\\]"):
        Audio(np.full(10, 2.0), sample_rate=10)
    with pytest.raises(InvalidInputError, match="float in \\[-1, 1\\] or int16"):
        Audio(np.zeros(10, dtype=np.int64), sample_rate=10)
    wav = Audio(np.zeros(50, dtype=np.int16), sample_rate=50).data
    (tmp_path / "a.wav").write_bytes(wav)
    ref = Audio(tmp_path / "a.wav").render("a", 0).reference
    assert (ref["sample_rate"], ref["duration"], ref["size"]) == (50, 1.0, len(wav))
    (tmp_path / "a.bin").write_bytes(b"\x00" * 40)
    with pytest.raises(InvalidInputError, match="not WAV"):
        Audio(tmp_path / "a.bin")


@pytest.mark.parametrize(("fmt", "magic"), [("mp4", b"ftyp"), ("webm", b"\x1aE\xdf\xa3")])
def test_video_from_frames_is_encoded_with_pyav(fmt: str, magic: bytes) -> None:
    av = pytest.importorskip("av", reason="videos from frames need the [video] extra (PyAV)")
    frames = np.random.default_rng(2).integers(0, 256, (6, 15, 17, 3), dtype=np.uint8)
    rendered = Video(frames, fps=3, format=fmt).render("vid", 9)
    data = check_file(rendered, "video", fmt, "vid", 9)
    assert magic in data[:12]
    ref = rendered.reference
    assert (ref["frames"], ref["fps"], ref["width"], ref["height"], ref["duration"]) == (
        6, 3.0, 17, 15, 2.0)
    with av.open(io.BytesIO(data)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 6
    assert decoded[0].shape == (16, 18, 3)  # padded to even sides for yuv420p


def test_video_refusals_and_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="uint8 \\[T, H, W, 3\\]"):
        Video(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(InvalidInputError, match="'mp4' or 'webm'"):
        Video(np.zeros((2, 4, 4, 3), np.uint8), format="avi")
    gif = tmp_path / "a.gif"
    PIL.new("RGB", (3, 2)).save(gif, format="GIF")
    ref = Video(gif).render("v", 0).reference
    assert (ref["format"], ref["width"], ref["height"]) == ("gif", 3, 2)
    (tmp_path / "a.txt").write_text("x" * 20)
    with pytest.raises(InvalidInputError, match="not MP4, WebM or GIF"):
        Video(tmp_path / "a.txt")


# -- Text, Html, Table, Histogram, Plot ----------------------------------------------------


def test_short_text_is_inline_long_text_a_file() -> None:
    assert Text("hi").render("t", 0) == artifactstore.media.Rendered(
        {"_type": "text", "text": "hi"}, {})
    long = "é" * MAX_INLINE_TEXT
    data = check_file(Text(long).render("t", 1), "text", "txt", "t", 1)
    assert data.decode("utf-8") == long
    with pytest.raises(InvalidInputError, match="takes a str"):
        Text(b"bytes")  # type: ignore[arg-type]


def test_html_from_str_bytes_and_a_path(tmp_path: Path) -> None:
    (tmp_path / "p.html").write_text("<b>file</b>")
    for value, expected in (("<p>é</p>", "<p>é</p>".encode()), (b"<i>x</i>", b"<i>x</i>"),
                            (tmp_path / "p.html", b"<b>file</b>")):
        assert check_file(Html(value).render("h", 0), "html", "html", "h", 0) == expected


def test_a_table_is_canonical_json_with_media_cells_as_references() -> None:
    pixels = np.full((2, 3), 7, np.uint8)
    table = Table(columns=["id", "score", "img", "note"],
                  data=[[1, np.float64(0.5), Image(pixels), None],
                        [2, float("nan"), Image(pixels), Text("ok")]])
    rendered = table.render("preds", 100)
    data = check_file(rendered, "table", "json", "preds", 100)
    body = json.loads(data)
    assert body["columns"] == ["id", "score", "img", "note"]
    assert body["rows"][0][:2] == [1, 0.5]
    assert body["rows"][1][1] is None  # NaN is null
    assert body["rows"][1][3] == {"_type": "text", "text": "ok"}
    image_ref = body["rows"][0][2]
    assert image_ref == body["rows"][1][2]  # equal images are one file
    assert image_ref["path"] in rendered.files
    assert len(rendered.files) == 2
    assert rendered.reference["columns"] == body["columns"]
    assert rendered.reference["rows"] == 2
    with pytest.raises(InvalidInputError, match="3 cells for 4 columns"):
        Table(columns=["a", "b", "c", "d"], data=[[1, 2, 3]])
    with pytest.raises(InvalidInputError, match="unique"):
        Table(columns=["a", "a"])


def test_a_table_from_a_dataframe() -> None:
    pd = pytest.importorskip("pandas", reason="the [pandas] extra (in the test extra)")
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    body = json.loads(next(iter(Table(dataframe=frame).render("t", 0).files.values())))
    assert body == {"columns": ["a", "b"], "rows": [[1, "x"], [2, "y"]]}


def test_a_histogram_of_values_and_of_precomputed_bins() -> None:
    values = np.concatenate([np.random.default_rng(3).normal(size=1000), [np.inf, np.nan]])
    ref = Histogram(values, num_bins=20).render("h", 0).reference
    assert ref["_type"] == "histogram"
    assert len(ref["counts"]) == 20
    assert len(ref["bins"]) == 21
    assert sum(ref["counts"]) == 1000  # non-finite values left out
    assert is_reference(ref)
    assert not is_file_reference(ref)
    counts, edges = np.histogram([1, 2, 2, 3], bins=3)
    assert Histogram(np_histogram=(counts, edges)).render("h", 1).reference == {
        "_type": "histogram", "bins": edges.tolist(), "counts": [1, 2, 1]}
    with pytest.raises(InvalidInputError, match="1-512"):
        Histogram(values, num_bins=513)
    with pytest.raises(InvalidInputError, match="one more edge"):
        Histogram(np_histogram=([1, 2], [0, 1]))
    with pytest.raises(InvalidInputError, match="increasing"):
        Histogram(np_histogram=([1, 2], [0, 2, 1]))


def test_a_matplotlib_figure_as_svg_and_png_and_a_vega_lite_spec() -> None:
    matplotlib = pytest.importorskip("matplotlib", reason="the test extra installs matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([1, 3, 2])
    svg = check_file(Plot(figure).render("fig", 0), "plot", "svg", "fig", 0)
    assert svg.startswith(b"<?xml")
    assert Plot(figure).data == svg  # no date inside: the same figure, the same bytes
    png = Plot(figure, format="png").render("fig", 0)
    assert (png.reference["width"], png.reference["height"]) == (100, 50)
    spec = {"mark": "line", "data": {"values": [{"x": 1, "y": np.int64(2)}]}}
    data = check_file(Plot(spec).render("chart", 0), "plot", "vega-lite", "chart", 0)
    assert json.loads(data) == {"data": {"values": [{"x": 1, "y": 2}]}, "mark": "line"}
    with pytest.raises(InvalidInputError, match="savefig"):
        Plot([1, 2, 3])


@pytest.mark.parametrize("key", ["../up", "a//b", "/abs", ""])
def test_keys_that_cannot_name_files_are_refused(key: str) -> None:
    with pytest.raises(InvalidInputError):
        Html("<p/>").render(key, 0)


# -- missing extras, in a process where the library cannot be imported ---------------------

BLOCKED = {
    "PIL": ("import numpy as np; artifactstore.Image(np.zeros((2, 2), np.uint8))",
            "images need Pillow: pip install 'artifactstore[media]'"),
    "numpy": ("artifactstore.Histogram([1.0, 2.0])",
              "histograms of values need numpy: pip install 'artifactstore[media]'"),
    "av": ("import numpy as np; artifactstore.Video(np.zeros((2, 4, 4, 3), np.uint8))",
           "videos from arrays need PyAV: pip install 'artifactstore[video]'"),
    "pandas": ("from artifactstore.runs.frames import runs_frame; runs_frame([])",
               "DataFrames of runs need pandas: pip install 'artifactstore[pandas]'"),
}


@pytest.mark.parametrize("module", sorted(BLOCKED))
def test_a_missing_library_is_one_line_naming_the_extra(module: str) -> None:
    code, expected = BLOCKED[module]
    script = (f"import sys; sys.modules[{module!r}] = None\n"
              "import artifactstore\n"  # importing the package needs none of them
              "from artifactstore.core.errors import MissingExtraError\n"
              f"try:\n    {code}\nexcept MissingExtraError as exc:\n"
              "    print(exc.exit_code, exc)\nelse:\n    print('no error')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{MissingExtraError.exit_code} {expected}"


def test_no_file_logging_needs_an_optional_library(tmp_path: Path) -> None:
    """Files are stored as they are: their facts come from headers, not from Pillow."""
    PIL.new("RGB", (3, 2)).save(tmp_path / "x.png")
    script = ("import sys\nfor m in ('PIL', 'numpy', 'pandas', 'av'): sys.modules[m] = None\n"
              "import artifactstore as a\n"
              f"r = a.Image({str(tmp_path / 'x.png')!r}).render('k', 0).reference\n"
              "print(r['width'], r['height'], a.Histogram(np_histogram=([1], [0, 1]))"
              ".render('h', 0).reference['counts'], a.Text('t').render('t', 0).reference)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3 2 [1] {'_type': 'text', 'text': 't'}"


# -- in a run ------------------------------------------------------------------------------


def test_media_are_committed_before_the_segment_that_references_them(tmp_path: Path) -> None:
    """At the 1,000th row the segment is written: the media version holding every file
    it references exists already, while the run is still going."""
    url = str(tmp_path / "s")
    init_quick_store(url)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        run = store.run(job_type="train")
        for step in range(1000):
            row: dict[str, object] = {"loss": 1.0 / (step + 1)}
            if step % 100 == 0:
                row["img"] = Image(np.full((2, 2), step // 100, np.uint8))
            run.log(row)
        history = list(store.run_history(run.id, sync=True))  # segment 0, run still open
        assert len(history) == 1000
        media = store.artifact(f"media-{run.id}:latest")
        assert media.type == "run-media"
        paths = {e.path for e in media.files()}
        refs = [r.values["img"] for r in history if "img" in r.values]
        assert len(refs) == 10
        assert {r["path"] for r in refs} == paths
        run.log({"img": Image(np.full((2, 2), 99, np.uint8)), "caption": Text("last")})
        run.finish()
        info = store.get_run(run.id, sync=True)
        assert info.outputs == (f"media-{run.id}:v0", f"media-{run.id}:v1")
        assert {e.path for e in store.artifact(f"media-{run.id}:v1").files()} > paths
        assert info.summary["caption"] == {"_type": "text", "text": "last"}
        assert store.media(run.id, info.summary["img"]).to_numpy().tolist() == [[99, 99]] * 2
        with pytest.raises(InvalidInputError, match="inline"):
            store.media(run.id, info.summary["caption"])
        with store.run() as second, pytest.raises(InvalidInputError,
                                                  match="log numbers, bools, strings or media"):
            second.log({"x": object()})
        purged = store.purge_run(run.id, reason="test", wait=False)
        assert purged.versions == [f"media-{run.id}:v0", f"media-{run.id}:v1"]
        assert purged.absent
        assert purged.blobs_wiped >= 11
        with pytest.raises(NotFoundError, match="has no media"):
            store.media(run.id, info.summary["img"])
        assert store.get_run(run.id).summary["caption"]["text"] == "last"  # history kept
        with pytest.raises(InvalidInputError, match="needs a reason"):
            store.purge_run(run.id, reason=" ")


def test_a_refused_media_value_logs_nothing(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    init_quick_store(url)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        with store.run() as run:
            with pytest.raises(InvalidInputError, match="cannot name media files"):
                run.log({"../up": Html("<p/>")})
            run.log({"a": 1, "page": Html("<p/>")})
        [row] = store.run_history(run.id)
        assert row.step == 0  # the refused row took no step
        assert store.media(run.id, row.values["page"]).read() == b"<p/>"
    # the CLI shows a reference as one value, not one line per field
    from artifactstore.cli import main

    assert main(["runs", "export", "--store", url, "--format", "csv"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert "summary.page" in header.split(",")
    assert "summary.page.path" not in header
    assert "digest" in line


def test_a_reference_whose_digest_does_not_match_is_refused(tmp_path: Path) -> None:
    url = str(tmp_path / "s")
    init_quick_store(url)
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        with store.run() as run:
            run.log({"page": Html("<p>one</p>")})
        ref = dict(store.get_run(run.id, sync=True).summary["page"])
        assert store.media(run.id, ref).read() == b"<p>one</p>"
        assert store.media(run.id, ref["path"]).read() == b"<p>one</p>"
        ref["digest"] = "0" * 64
        with pytest.raises(artifactstore.core.errors.IntegrityError, match="digest"):
            store.media(run.id, ref)
        with pytest.raises(NotFoundError, match="not in media-"):
            store.media(run.id, {**ref, "path": "page/000000000000-0000000000000000.html"})
        with store.run() as other:
            other.log({"x": 1})
        with pytest.raises(NotFoundError, match="has no media"):
            store.media(other.id, ref)


def test_missing_extra_error_is_a_configuration_error() -> None:
    assert issubclass(MissingExtraError, ImportError)
