"""The native family: the workload as a plain host process (:mod:`.platform`), statically or
dynamically linked (:mod:`.variants`)."""

#: The family's variants, in the order of reports: name -> "module:Class".
VARIANTS = {
    "native/static": "virtbench.platforms.native.variants:NativeStatic",
    "native/dynamic": "virtbench.platforms.native.variants:NativeDynamic",
}

#: The variant every other is compared with: ratios to native, the reference checksums.
BASELINE = "native/static"
