"""The demo world: a generated Linyi with its departments' own databases.

May import everything below ``server.py``: it sets up grants, staff and applications through their own packages.
"""
