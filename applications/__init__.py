"""Share applications (共享申请, Art 17-21): the working-day calendar deadlines are counted on, and the
apply → review → deemed approval → coordination process, and their tables (``tables.py``). Imports
``govshare``, ``catalog``, ``policies``, and the hash chain and process records of ``audit``. It declares to
``policies.store`` how to read the pending applications silence may approve (the policies cannot import it).
"""
