"""Charts for the phone: a worker that draws (``render``), behind a cache (``renderer``)."""
