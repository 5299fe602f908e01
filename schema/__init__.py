"""The GraphQL schema, generated from the published catalog: a type per resource, a field per data item.

May import ``resolvers``, ``catalog``, ``oversight`` and ``govshare``; holds no data-path logic of its own.
"""
