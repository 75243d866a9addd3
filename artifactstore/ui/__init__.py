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
- the web UI (``artifactstore ui``, the ``ui`` extra): :mod:`~artifactstore.ui.views`
  (what each page shows, as data), :mod:`~artifactstore.ui.app` (the Starlette app:
  routes, templates under ``ui/templates/``, JSON twins), :mod:`~artifactstore.ui.access`
  (the loopback and token rule), :mod:`~artifactstore.ui.server` (bind, print the URL,
  serve until Ctrl-C).
"""
