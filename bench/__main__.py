"""``python -m bench`` from the repository root: the suite, as ``python bench/run.py``;
``python -m bench ui ...``: the web UI at scale (``bench/ui_scale.py``);
``python -m bench server ...``: the team server under load (``bench/server_load.py``);
``python -m bench files ...``: a million files and one huge file (``bench/files_scale.py``);
``python -m bench history ...``: 20,000 versions, 5,000 runs on S3 (``bench/history_scale.py``)."""

import sys

if sys.argv[1:2] == ["ui"]:
    from bench.ui_scale import main as ui_main

    sys.exit(ui_main(sys.argv[2:]))

if sys.argv[1:2] == ["history"]:
    from bench.history_scale import main as history_main

    sys.exit(history_main(sys.argv[2:]))

if sys.argv[1:2] == ["server"]:
    from bench.server_load import main as server_main

    sys.exit(server_main(sys.argv[2:]))

if sys.argv[1:2] == ["files"]:
    from bench.files_scale import main as files_main

    sys.exit(files_main(sys.argv[2:]))

from bench.run import main

sys.exit(main())
