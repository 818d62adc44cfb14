raise ImportError("missing dependency 'frobnicate'")
