"""Live prediction: a camera, a stream or a file delivered at its own rate, every person's
values for each frame from the frames up to it, written as they happen (``abaw-expr live``)."""
