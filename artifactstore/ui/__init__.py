"""What people look at: pages drawn from the public API (``artifactstore.Store``).

The layer sits above ``api`` (and ``demo``) and below ``cli``: it reads the store
only through :class:`artifactstore.Store`, never through a lower layer, so the
pictures and the web UI show what a script would see.

- :mod:`artifactstore.ui.assets`: the files under ``ui/static/`` (our page script
  and style, and the vendored libraries under ``static/vendor/`` with their licences),
  read from the installed package; the web UI serves the same files.
- :mod:`artifactstore.ui.reports`: self-contained HTML pages (``lineage --html``,
  ``audit --html``): one file, data and scripts inline, no network at view time.
- :mod:`artifactstore.ui.charts`: a chart of one metric over runs (``runs plot``),
  drawn with matplotlib (the ``plot`` extra).
- the web UI (``artifactstore ui``, the ``ui`` extra): :mod:`~artifactstore.ui.app` (the
  Starlette app: security headers, the page modules), :mod:`~artifactstore.ui.web` (what
  every page shares), :mod:`~artifactstore.ui.workspace` (one opened store per project),
  one page module per screen with the pure data functions it uses
  (:mod:`~artifactstore.ui.runpages` and :mod:`~artifactstore.ui.views`,
  :mod:`~artifactstore.ui.mediapages` and :mod:`~artifactstore.ui.mediaviews`,
  :mod:`~artifactstore.ui.artifactpages` and :mod:`~artifactstore.ui.artifactviews`,
  :mod:`~artifactstore.ui.lineagepages`, :mod:`~artifactstore.ui.projectpages`), templates
  under ``ui/templates/``, :mod:`~artifactstore.ui.access` (the loopback and token rule)
  and :mod:`~artifactstore.ui.server` (bind, print the URL, serve until Ctrl-C).
"""
