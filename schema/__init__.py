"""The GraphQL schema, generated from the published catalog: a type per resource, a field per data item.

Imports ``catalog`` and ``resolvers``; holds no data-path logic of its own.
"""
