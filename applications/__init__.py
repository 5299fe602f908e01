"""Share applications (共享申请, Art 17-21): the working-day calendar their deadlines are counted on, and
(next) the apply → review → deemed approval → coordination process. Imports ``govshare`` and ``catalog``.
"""
