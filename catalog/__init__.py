"""The resource catalog (资源目录): its model, the validating loader of catalog files, the catalog in force (its
versions' table in ``store.py``), and the catalog kept by its departments (``workflow.py``: submit, review, publish,
return, retire; its table in ``tables.py``).

``catalog/demo/`` holds the demo world's catalog files; ``freshness.py`` the update cycles and the sources' last
changes. May import ``govshare``, ``connectors.conformance`` (to check sources), ``connectors.freshness`` (to
read a source's last change) and, for the workflow's process records, ``audit.chain``.
"""
