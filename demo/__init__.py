"""The demo world: a generated Linyi with its departments' own databases.

Imports nothing of GraphQL or policy.
"""
