"""Video files: streamed decoding, preprocessing into the ABAW layout, and per-frame prediction."""
