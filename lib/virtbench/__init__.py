"""virtbench: process, container, WebAssembly and VM, measured on the machine at hand."""

__version__ = "0.1.0"
