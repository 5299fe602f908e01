"""Share applications (共享申请, Art 17-21): the working-day calendar deadlines are counted on, and the
apply → review → deemed approval → coordination process. May import ``policies``,
``catalog``, ``govshare`` and the hash chain of ``audit.chain``.
"""
