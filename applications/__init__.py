"""Share applications (共享申请, Art 17-21): the working-day calendar deadlines are counted on, and the
apply → review → deemed approval → coordination process, and their tables (``tables.py``). May import
``policies``, ``catalog``, ``govshare``, and the hash chain and process records of ``audit.chain``, ``audit.tables``.
It declares to ``policies.store`` how to read the pending applications silence may approve (the policies cannot
import it).
"""
