"""The studio's JSON API (`/api/…`), served beside the page by the same server: list, read, start and stop runs,
fetch a run's files, upload data. Who asks is a Bearer token or the page's login cookie (ownership of runs and the
checks of a recipe are studio/run/ownership.py's); the page mounts it (studio/ui/app.py), the docs are at
/api/docs."""
