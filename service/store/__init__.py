"""Files on disk: Jan's folder layout, lenient line reading, canonical writing, locks, atomic
rewrites. Nothing here knows about HTTP or the index."""
