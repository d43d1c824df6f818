"""The native family: the workload as a plain host process, statically or dynamically
linked (:mod:`.platform`)."""
