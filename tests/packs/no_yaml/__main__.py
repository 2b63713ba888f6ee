raise RuntimeError("exits-at-start pack refuses to serve")
