"""The media of a run in the web UI (artifactstore/ui/mediapages.py, mediaviews.py,
static/media.js): the bytes of one media file with the content type of its reference and
the headers that keep hostile files inert, the media index, a private project's media
served decrypted only through the app, and the run page's media panels in a real
headless Chromium (step sliders, histogram heatmap, table thumbnails, sandboxed HTML)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from starlette.testclient import TestClient
from test_ui_app import HOSTILE, SCREENSHOTS

import artifactstore
from artifactstore import Audio, Histogram, Html, Image, Plot, Table, Text, Video
from artifactstore.backends import open_backend
from artifactstore.maintenance.projects import create_project
from artifactstore.runs.run import Run
from artifactstore.testing.browser import SealedPage
from artifactstore.testing.keys import CHEAP_SCRYPT
from artifactstore.testing.liverun import live_run
from artifactstore.testing.stores import init_quick_store
from artifactstore.testing.uiserver import serving
from artifactstore.ui import mediaviews
from artifactstore.ui.app import create_app
from artifactstore.ui.web import SANDBOXED_FILE

matplotlib = pytest.importorskip("matplotlib", reason="the test extra installs matplotlib")
pytest.importorskip("PIL.Image", reason="the test extra installs Pillow")
HAVE_VIDEO = importlib.util.find_spec("av") is not None
STEPS = 200
TABLE_ROWS = 30
#: a page that would set window.pwned if any of it ran
HOSTILE_HTML = HOSTILE + "<p id='logged'>a logged page</p><img src='http://example.org/x.png'>"
VEGA = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "mark": "bar",
        "data": {"values": [{"a": "x", "b": 1}]}}


class Logged:
    """What the training script logged: (key, step) -> the bytes of each file."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, int], list[bytes]] = {}
        self.table_cells: list[bytes] = []

    def add(self, key: str, step: int, data: bytes) -> None:
        self.files.setdefault((key, step), []).append(data)


def _picture(step: int) -> np.ndarray:
    """A 24x32 RGB picture that differs per step (a bar that moves right)."""
    pixels = np.zeros((24, 32, 3), dtype=np.uint8)
    pixels[:, :, 2] = 40 + step
    pixels[4:20, step // 10:step // 10 + 8, 0] = 255
    return pixels


def train(store: artifactstore.Store, logged: Logged) -> str:
    """A run of 200 steps with every kind of media (see the module docstring)."""
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rng = np.random.default_rng(8)
    with store.run(name="media", job_type="train", config={"lr": 0.01}) as run:
        for step in range(STEPS):
            row: dict[str, Any] = {"loss": 1.0 / (step + 1)}
            if step % 10 == 0:
                mask = np.zeros((24, 32), dtype=np.uint8)
                mask[2:10, 2:12] = 1
                image = Image(_picture(step), caption=f"sample {step}", masks={
                    "seg": {"mask_data": mask, "class_labels": {"1": "cat"}}}, boxes={
                    "pred": {"box_data": [{"position": {"minX": 0.1, "maxX": 0.6, "minY": 0.2,
                                                        "maxY": 0.7},
                                           "class_id": 1, "box_caption": HOSTILE}],
                             "class_labels": {"1": "cat"}}})
                logged.add("samples/img", step, image.data)
                row["samples/img"] = image
                row["weights"] = Histogram(rng.normal(step / 20, 1, 500), num_bins=24)
            if step in (0, 10):
                row[HOSTILE] = Image(_picture(step + 5), caption=HOSTILE)
                logged.add(HOSTILE, step, row[HOSTILE].data)
            if step == 20:
                cells = [Image(rng.integers(0, 256, (8, 8), dtype=np.uint8))
                         for _ in range(TABLE_ROWS)]
                logged.table_cells = [c.data for c in cells]
                row["predictions"] = Table(
                    columns=["id", "label", "img"], caption="val predictions",
                    data=[[i, HOSTILE if i == 0 else f"label {i}", c]
                          for i, c in enumerate(cells)])
            if step == 30:
                row["notes"] = Text(HOSTILE, caption=HOSTILE)
            if step == 40:
                long = Text("long text\n" * 600)
                logged.add("notes", 40, long.data)
                row["notes"] = long
            if step == 50:
                figure = Figure(figsize=(3, 2))
                figure.add_subplot().plot(rng.normal(size=50))
                plot = Plot(figure, caption="curve")
                logged.add("curve", step, plot.data)
                row["curve"] = plot
            if step == 60:
                row["vega"] = Plot(VEGA)
            if step == 70:
                page = Html(HOSTILE_HTML, caption=HOSTILE)
                logged.add("page", step, page.data)
                row["page"] = page
            if step == 100:
                audio = Audio(rng.uniform(-1, 1, 8000), sample_rate=8000, caption="noise")
                logged.add("sound", step, audio.data)
                row["sound"] = audio
            if step == 150 and HAVE_VIDEO:
                video = Video(rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8), fps=3,
                              format="webm", caption="rollout")
                logged.add("rollout", step, video.data)
                row["rollout"] = video
            run.log(row, step=step)
            if step == 100:  # a second picture at the same key and step
                second = Image(_picture(199), caption="second at 100")
                logged.add("samples/img", step, second.data)
                run.log({"samples/img": second}, step=step)
    return run.id


class Media:
    def __init__(self, url: str, run_id: str, private_id: str, logged: Logged,
                 private_logged: Logged) -> None:
        self.url, self.run_id, self.private_id = url, run_id, private_id
        self.logged, self.private_logged = logged, private_logged


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """A public default project with the 200-step media run, and a private project
    ``lab`` with a small one."""
    url = str(tmp_path_factory.mktemp("uimedia") / "store")
    init_quick_store(url)
    logged, private_logged = Logged(), Logged()
    with artifactstore.open(url) as store:
        run_id = train(store, logged)
    create_project("lab", url, passphrase="words", scrypt=CHEAP_SCRYPT)
    with artifactstore.open(url, "lab", create=False) as store, \
            store.run(name="secret") as run:
        image = Image(np.full((16, 16, 3), 7, dtype=np.uint8), caption="secret picture")
        page = Html("<p>secret page " + "x" * 200 + "</p>")
        private_logged.add("img", 0, image.data)
        private_logged.add("page", 0, page.data)
        run.log({"img": image, "page": page}, step=0)
    return Media(url, run_id, run.id, logged, private_logged)


@pytest.fixture(scope="module")
def store(media: Media) -> Iterator[artifactstore.Store]:
    with artifactstore.open(media.url) as opened:
        yield opened


@pytest.fixture
def client(store: artifactstore.Store) -> TestClient:
    return TestClient(create_app(store))


def _index(client: TestClient, run_id: str, project: str = "default") -> dict[str, Any]:
    answer = client.get(f"/api/p/{project}/runs/{run_id}/media")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def _panel(index: dict[str, Any], key: str, kind: str | None = None) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        p for p in index["panels"] if p["key"] == key and kind in (None, p["kind"])]
    assert len(found) == 1, [(p["key"], p["kind"]) for p in index["panels"]]
    return found[0]


# --- the index ---------------------------------------------------------------------


def test_media_index_lists_keys_kinds_steps_and_urls(client: TestClient, media: Media) -> None:
    index = _index(client, media.run_id)
    assert index == client.get(f"/p/default/runs/{media.run_id}/media?format=json").json()
    kinds = ["image", "plot", "video", "audio", "histogram", "table", "text", "html"]
    if not HAVE_VIDEO:
        kinds.remove("video")
    assert index["kinds"] == kinds
    assert [p["kind"] for p in index["panels"]] == sorted(
        (p["kind"] for p in index["panels"]), key=kinds.index)  # grouped by kind
    images = _panel(index, "samples/img")
    assert images["steps"] == list(range(0, STEPS, 10))
    assert [a["step"] for a in images["at"]] == images["steps"]
    at_100 = images["at"][10]["refs"]
    assert [r["caption"] for r in at_100] == ["sample 100", "second at 100"]
    first = images["at"][0]["refs"][0]
    assert first["url"] == (f"/p/default/runs/{media.run_id}/media/"
                            f"{quote(first['path'], safe='/')}")
    assert first["size"] == len(media.logged.files["samples/img", 0][0])
    assert first["masks"]["seg"]["url"].endswith(".png")
    assert first["boxes"]["pred"]["box_data"][0]["box_caption"] == HOSTILE
    histogram = _panel(index, "weights")["at"][3]["refs"][0]
    assert len(histogram["counts"]) == 24
    assert len(histogram["bins"]) == 25
    assert "url" not in histogram  # inline
    notes = _panel(index, "notes")
    assert notes["steps"] == [30, 40]
    assert notes["at"][0]["refs"][0]["text"] == HOSTILE  # inline text
    assert "url" in notes["at"][1]["refs"][0]  # a long text is a file
    assert _panel(index, HOSTILE)["steps"] == [0, 10]
    assert _panel(index, "predictions")["at"][0]["refs"][0]["rows"] == TABLE_ROWS
    page = client.get(f"/p/default/runs/{media.run_id}/media")
    assert page.status_code == 200
    assert 'id="media"' in page.text
    assert "/static/media.js" in page.text
    assert _index(client, media.run_id[:10])["run_id"] == media.run_id  # a prefix will do


def test_a_run_without_media_has_an_empty_index(tmp_path: Path) -> None:
    with artifactstore.open(str(tmp_path / "s")) as store:
        with store.run() as run:
            run.log({"loss": 1.0})
        client = TestClient(create_app(store))
        assert _index(client, run.id)["panels"] == []
        assert client.get(f"/api/p/default/runs/{run.id}/media/x/000000000000-"
                          "0123456789abcdef.png").status_code == 404
        run_page = client.get(f"/p/default/runs/{run.id}").text
        assert 'id="media"' in run_page
        assert "/static/media.js" in run_page


def test_steps_logged_out_of_order_are_one_slider_in_step_order(tmp_path: Path) -> None:
    with artifactstore.open(str(tmp_path / "s")) as store:
        with store.run() as run:
            for step, shade in ((5, 1), (3, 2), (5, 3)):
                run.log({"img": Image(np.full((4, 4), shade, dtype=np.uint8))}, step=step)
        panel = _panel(_index(TestClient(create_app(store)), run.id), "img")
    assert panel["steps"] == [3, 5]
    assert [len(a["refs"]) for a in panel["at"]] == [1, 2]


# --- the bytes ---------------------------------------------------------------------


EXPECTED_TYPES = {"samples/img": "image/png", HOSTILE: "image/png", "curve": "image/svg+xml",
                  "page": "text/html; charset=utf-8", "sound": "audio/wav",
                  "rollout": "video/webm", "notes": "text/plain; charset=utf-8"}


def test_media_bytes_carry_the_type_of_their_reference(client: TestClient, media: Media) -> None:
    index = _index(client, media.run_id)
    served = 0
    for (key, step), files in media.logged.files.items():
        refs = [r for a in _panel(index, key)["at"] if a["step"] == step for r in a["refs"]
                if "url" in r]
        assert len(refs) == len(files), (key, step)
        for ref, data in zip(refs, files, strict=True):
            answer = client.get(ref["url"])
            assert answer.status_code == 200, (key, answer.text)
            assert answer.content == data
            assert answer.headers["content-type"] == EXPECTED_TYPES[key]
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["cache-control"] == "private, max-age=31536000, immutable"
            assert answer.headers["etag"] == f'"{ref["digest"]}"'
            policy = answer.headers["content-security-policy"]
            if key in ("page", "curve"):  # HTML and SVG: a sandbox, nothing loaded
                assert policy == SANDBOXED_FILE
                assert policy.startswith("sandbox;")
                assert "default-src 'none'" in policy
            else:
                assert "sandbox" not in policy
            by_digest = client.get(f"/p/default/runs/{media.run_id}/media/{ref['digest']}")
            assert by_digest.content == data
            assert by_digest.headers["content-type"] == EXPECTED_TYPES[key]
            served += 1
    assert served == len([f for files in media.logged.files.values() for f in files])
    vega = _panel(index, "vega")["at"][0]["refs"][0]
    answer = client.get(vega["url"])
    assert answer.headers["content-type"] == "application/json"
    assert json.loads(answer.content) == VEGA


def test_table_image_cells_and_masks_are_served(client: TestClient, media: Media) -> None:
    index = _index(client, media.run_id)
    table = client.get(_panel(index, "predictions")["at"][0]["refs"][0]["url"])
    assert table.headers["content-type"] == "application/json"
    rows = table.json()["rows"]
    assert rows[0][1] == HOSTILE
    for row, data in zip(rows, media.logged.table_cells, strict=True):
        answer = client.get(mediaviews.media_url("/p/default", media.run_id, row[2]["path"]))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/png"
        assert answer.content == data
    mask = _panel(index, "samples/img")["at"][0]["refs"][0]["masks"]["seg"]
    answer = client.get(mask["url"])
    assert answer.headers["content-type"] == "image/png"
    assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_ranges_and_revalidation(client: TestClient, media: Media) -> None:
    ref = _panel(_index(client, media.run_id), "sound")["at"][0]["refs"][0]
    data = media.logged.files["sound", 100][0]
    part = client.get(ref["url"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = client.get(ref["url"], headers={"Range": "bytes=-16"})
    assert (tail.status_code, tail.content) == (206, data[-16:])
    outside = client.get(ref["url"], headers={"Range": f"bytes={len(data)}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(data)}"
    cached = client.get(ref["url"], headers={"If-None-Match": f'"{ref["digest"]}"'})
    assert (cached.status_code, cached.content) == (304, b"")


def test_unknown_media_is_a_one_line_404(client: TestClient, media: Media) -> None:
    base = f"/p/default/runs/{media.run_id}/media/"
    real = _panel(_index(client, media.run_id), "samples/img")["at"][0]["refs"][0]["path"]
    key, _, name = real.rpartition("/")
    for path in (
        "nosuch/000000000000-0123456789abcdef.png",  # never logged
        f"{key}/000000000001-{name[13:]}",  # the file name of another step
        f"{key}/{name[:-4]}.html",  # the same file under another extension
        "../../../etc/passwd",
        "a" * 64,  # a digest the run never logged
        "samples/img",
    ):
        answer = client.get(base + path)
        assert answer.status_code == 404, path
        assert len(answer.text.strip().splitlines()) == 1, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
    assert client.get(f"/p/default/runs/nosuchrun/media/{real}").status_code == 404
    assert client.get("/api/p/default/runs/nosuchrun/media").status_code == 404
    assert client.get(f"/p/nosuchproject/runs/{media.run_id}/media/{real}").status_code == 404


def test_private_media_is_served_decrypted_only_through_the_app(
        client: TestClient, media: Media) -> None:
    index = _index(client, media.private_id, project="lab")  # opened by the app's workspace
    for key, kind in (("img", "image"), ("page", "html")):
        ref = _panel(index, key, kind)["at"][0]["refs"][0]
        assert ref["url"].startswith("/p/lab/")
        answer = client.get(ref["url"])
        assert answer.status_code == 200
        assert answer.content == media.private_logged.files[key, 0][0]
    # the store holds none of these bytes in plaintext
    pieces = [d[i:i + 48] for files in media.private_logged.files.values() for d in files
              for i in range(0, max(len(d) - 48, 1), 32)]
    backend = open_backend(media.url)
    try:
        keys = [k for k in backend.list("") if "lab" in k or k.startswith("objects/")]
        assert keys
        assert [k for k in keys if any(p in backend.get(k) for p in pieces)] == []
    finally:
        backend.close()


def test_content_types_from_the_reference_never_the_name() -> None:
    assert mediaviews.content_type({"_type": "audio", "format": "ogg"}) == "audio/ogg"
    assert mediaviews.content_type({"_type": "video", "format": "mp4"}) == "video/mp4"
    assert mediaviews.content_type({"_type": "image", "format": "jpeg",
                                    "path": "x/000000000000-0123456789abcdef.html"}) \
        == "image/jpeg"
    assert mediaviews.content_type({"_type": "image"}) == "application/octet-stream"
    assert mediaviews.content_type({"_type": "image", "format": "exe"}) \
        == "application/octet-stream"
    assert mediaviews.sandboxed({"format": "svg"})
    assert mediaviews.sandboxed({"format": "html"})
    assert not mediaviews.sandboxed({"format": "png"})
    assert mediaviews.parse_range(None, 10) is None
    assert mediaviews.parse_range("bytes=2-", 10) == (2, 10)
    assert mediaviews.parse_range("bytes=2-100", 10) == (2, 10)
    assert mediaviews.parse_range("bytes=0-1,4-5", 10) is None  # several: the whole file


# --- in a real browser -------------------------------------------------------------


@pytest.fixture
def served(store: artifactstore.Store) -> Iterator[str]:
    """The UI of ``store`` served on 127.0.0.1 (artifactstore/testing/uiserver.py)."""
    with serving(store) as url:
        yield url


def _panel_js(key: str) -> str:
    return (f"[...document.querySelectorAll('.media-panel')]"
            f".find(p => p.dataset.key === {json.dumps(key)})")


def test_media_panels_in_a_real_browser(served: str, media: Media, sealed_page: SealedPage,
                                        tmp_path: Path) -> None:
    page = sealed_page
    page.open(served + f"p/default/runs/{media.run_id}")
    page.wait_ready()
    groups = page.evaluate("[...document.querySelectorAll('.media-group')]"
                           ".map(g => g.dataset.kind)")
    assert groups == [k for k in ("image", "plot", "video", "audio", "histogram", "table",
                                  "text", "html") if k != "video" or HAVE_VIDEO]

    # the image slider: starts at the last step; another step shows another picture
    images = _panel_js("samples/img")
    first = page.evaluate(f"{images}.querySelector('.media-image img').src")
    assert first.endswith(".png")
    assert "/000000000190-" in first
    page.evaluate(f"""() => {{ const s = {images}.querySelector('input[type=range]');
        s.value = '3'; s.dispatchEvent(new Event('input')); }}""")
    page.wait_for(f"""() => {{ const img = {images}.querySelector('.media-image img');
        return img.src.includes('/000000000030-') && img.complete && img.naturalWidth > 0; }}""")
    assert page.evaluate(f"{images}.querySelector('.media-image img').naturalWidth") == 32
    assert page.text("[data-key='samples/img'] .media-step") == "step 30 (4 of 20)"
    assert page.evaluate(f"{images}.querySelector('figcaption').textContent") == "sample 30"
    # the masks and boxes are drawn over it
    page.wait_for(f"() => {images}.querySelector('canvas.media-overlay') !== null")
    assert _painted(page, f"{images}.querySelector('canvas.media-overlay')")
    # two pictures logged at step 100 are shown in a row
    page.evaluate(f"""() => {{ const s = {images}.querySelector('input[type=range]');
        s.value = '10'; s.dispatchEvent(new Event('input')); }}""")
    page.wait_for(f"""() => [...{images}.querySelectorAll('.media-image img')]
        .filter(i => i.complete && i.naturalWidth > 0).length === 2""")

    # histograms: the heatmap over steps and the bars of the step
    histogram = _panel_js("weights")
    assert _painted(page, f"{histogram}.querySelector('canvas.media-heatmap')", colour=True)
    assert _painted(page, f"{histogram}.querySelector('canvas.media-bars')", colour=True)

    # the table: thumbnails loaded, paged, sortable; a hostile cell is text
    table = _panel_js("predictions")
    page.wait_for(f"""() => {{ const t = [...{table}.querySelectorAll('img.media-thumb')];
        return t.length === 20 && t.every(i => i.complete && i.naturalWidth === 8); }}""")
    assert "page 1 of 2" in page.text("[data-key='predictions'] .media-pager")
    page.click("[data-key='predictions'] th:first-child button")
    page.click("[data-key='predictions'] th:first-child button")  # id descending
    assert page.evaluate(f"{table}.querySelector('tbody td').textContent") == str(TABLE_ROWS - 1)
    page.click("[data-key='predictions'] .media-pager button:last-of-type")
    page.wait_for(f"""() => [...{table}.querySelectorAll('tbody tr')].length === 10 &&
        [...{table}.querySelectorAll('img.media-thumb')]
            .every(i => i.complete && i.naturalWidth)""")
    assert HOSTILE in page.text("[data-key='predictions'] tbody")

    # the plot, the players, the texts and the sandboxed HTML
    assert page.evaluate(f"{_panel_js('curve')}.querySelector('img').naturalWidth") > 0
    assert "Vega-Lite spec" in page.text("[data-key='vega']")
    assert '"mark": "bar"' in page.text("[data-key='vega'] pre")
    page.wait_for(f"() => {_panel_js('sound')}.querySelector('audio').readyState >= 1")
    if HAVE_VIDEO:
        page.wait_for(f"() => {_panel_js('rollout')}.querySelector('video').readyState >= 1")
        assert page.evaluate(f"{_panel_js('rollout')}.querySelector('video').videoWidth") == 16
    notes = _panel_js("notes")
    assert page.evaluate(f"{notes}.querySelector('pre').textContent") == "long text\n" * 600
    page.evaluate(f"""() => {{ const s = {notes}.querySelector('input[type=range]');
        s.value = '0'; s.dispatchEvent(new Event('input')); }}""")
    page.wait_for(f"() => {notes}.querySelector('pre').textContent === {json.dumps(HOSTILE)}")
    frame = page.evaluate(f"""() => {{ const f = {_panel_js('page')}.querySelector('iframe');
        return [f.getAttribute('sandbox'), f.contentDocument === null,
                new URL(f.src).pathname]; }}""")
    assert frame[0] == ""
    assert frame[1] is True
    assert frame[2].startswith(f"/p/default/runs/{media.run_id}/media/page/")
    html_frame = next(f for f in page.page.frames if "/media/page/" in f.url)
    assert html_frame.evaluate("document.getElementById('logged').textContent") \
        == "a logged page"
    assert html_frame.evaluate("window.pwned === undefined")

    # hostile keys and captions are text, and nothing ran
    hostile = _panel_js(HOSTILE)
    assert page.evaluate(f"{hostile}.querySelector('h4').textContent") == HOSTILE
    assert page.evaluate(f"{hostile}.querySelector('figcaption').textContent") == HOSTILE
    page.wait_for(f"() => {hostile}.querySelector('img').naturalWidth === 32")
    assert page.evaluate("window.pwned === undefined")
    shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    page.page.set_viewport_size({"width": 1280, "height": 1500})
    page.evaluate("document.getElementById('media').scrollIntoView()")
    page.screenshot(shots / "ui-media.png")
    assert (shots / "ui-media.png").stat().st_size > 10_000
    assert page.blocked == []  # the logged page's picture of example.org was never asked
    # The only console messages are Chromium's reports of the logged page's hostile
    # scripts and pictures blocked by its sandbox and policy; the UI itself logs none.
    logged_page = html_frame.url
    blocked_there = [
        f"console: Blocked script execution in '{logged_page}' because the document's frame "
        "is sandboxed and the 'allow-scripts' permission is not set."] * 2
    for src in (logged_page.rsplit("/", 1)[0] + "/x", "http://example.org/x.png"):
        blocked_there += [f"console: Loading the image '{src}' violates the following Content "
                          "Security Policy directive: \"img-src data:\". The action has been "
                          "blocked.", f"request failed: {src} (csp)"]
    assert sorted(page.errors) == sorted(blocked_there)


def test_media_page_of_a_private_run_in_a_real_browser(
        served: str, media: Media, sealed_page: SealedPage) -> None:
    page = sealed_page
    page.open(served + f"p/lab/runs/{media.private_id}/media")
    page.wait_ready()
    page.wait_for(f"() => {_panel_js('img')}.querySelector('img').naturalWidth === 16")
    assert page.evaluate(f"{_panel_js('img')}.querySelector('figcaption').textContent") \
        == "secret picture"
    assert page.errors == []
    assert page.blocked == []


def _painted(page: SealedPage, canvas: str, *, colour: bool = False) -> bool:
    """Whether the canvas has a visible pixel (with ``colour``: one not white)."""
    return bool(page.evaluate(f"""() => {{
        const c = {canvas};
        if (!c || !c.width || !c.height) return false;
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < px.length; i += 4) {{
            if (px[i + 3] === 0) continue;
            if (!{str(colour).lower()} || px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250)
                return true;
        }}
        return false;
    }}"""))


def _first_media(run: Run) -> None:
    for step in range(1000):  # one full metrics segment: written now
        run.log({"loss": 1 / (step + 1), **({"samples": Image(_picture(1))} if step == 0
                                           else {})})


def _more_media(run: Run) -> None:
    for step in range(1000, 2000):
        row: dict[str, Any] = {"loss": 1 / (step + 1)}
        if step == 1500:
            row["samples"] = Image(_picture(2))
            row["notes"] = Text("a note logged later")
        run.log(row)


def test_media_panels_follow_a_live_run_in_a_real_browser(
        tmp_path: Path, sealed_page: SealedPage) -> None:
    """A run still logging: its page shows the images logged so far; when the run logs
    more (a new step of the key, and a new key), the panel's slider grows and, left at
    the last step, shows the newest image; a new panel appears; when the run ends the
    page stops asking."""
    url = str(tmp_path / "store")
    page = sealed_page
    samples = _panel_js("samples")
    with live_run(url, "live-media", _first_media, _more_media) as live, \
            artifactstore.open(url) as store, serving(store) as address:
        run_id = store.runs()[0].run_id
        page.open(address + f"p/default/runs/{run_id}")
        page.wait_ready()
        assert page.evaluate("document.getElementById('media').dataset.live") == "true"
        assert page.evaluate(f"{samples}.querySelector('.media-slider')") is None
        src = page.evaluate(f"{samples}.querySelector('img').src")
        live.go_on()
        page.wait_for(f"() => {samples}.querySelector('.media-slider') !== null && "
                      f"{samples}.querySelector('img').src !== {json.dumps(src)} && "
                      f"{samples}.querySelector('img').naturalWidth > 0", timeout=60)
        assert page.evaluate(f"{samples}.querySelector('.media-slider').max") == "1"
        assert page.evaluate(f"{samples}.querySelector('.media-step').textContent") \
            == "step 1500 (2 of 2)"
        page.wait_for(f"() => {_panel_js('notes')} !== undefined", timeout=60)
        live.finish()
        page.wait_for("() => document.getElementById('media').dataset.live === 'false'",
                      timeout=60)
        assert page.errors == []
        assert page.blocked == []


def test_the_artifacts_page_keeps_run_media_aside(client: TestClient, media: Media) -> None:
    """``media-<run>`` artifacts are shown on their run's page; the artifacts list hides
    them unless asked (``?media=1``) and says how many it hides."""
    listed = client.get("/api/p/default/artifacts").json()
    assert [a for a in listed["artifacts"] if a["type"] == "run-media"] == []
    assert listed["hidden_media"] == 1
    assert "show the runs' media artifacts" in client.get("/p/default/artifacts").text
    shown = client.get("/api/p/default/artifacts", params={"media": "1"}).json()
    assert [a["name"] for a in shown["artifacts"] if a["type"] == "run-media"] \
        == [f"media-{media.run_id}"]
