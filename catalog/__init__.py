"""The resource catalog (资源目录): its model, the validating loader of catalog files, the catalog in force (its
versions' table in ``store.py``).

``catalog/demo/`` holds the demo world's catalog files. May import ``govshare`` and, to check
sources, ``connectors.conformance``.
"""
