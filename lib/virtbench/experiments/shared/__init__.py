"""Code several experiments share (not experiments themselves: the package scan of
:mod:`virtbench.experiments` does not enter this folder).

- :mod:`.userland`      measuring on the other userlands a variant offers (condition userland)
- :mod:`.mem_instance`  the memory of one ``mem`` instance, read from the host
- :mod:`.serving`       how long-running instances are held, settled and loaded by wrk
"""
