"""The pure domain of lfsd.

Rule: nothing under ``lfsd.core`` performs I/O or imports HTTP, SQL or storage libraries. The outer layers
(``lfsd.http``, ``lfsd.db``, ``lfsd.storage``) depend on this package, never the other way round.
"""
