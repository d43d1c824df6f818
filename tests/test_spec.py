"""The workload spec: parsing and errors (pure logic), and a third-party-like program (reads
an input file, writes into a scratch directory, exits 10) measured on every family."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from virtbench import platforms
from virtbench.cli import main
from virtbench.platforms.base import Workload
from virtbench.platforms.vm.common import guest_output, guest_peak
from virtbench.platforms.vm.guestpeak import guest_peak_kib
from virtbench.platforms.vm.userboot import user_script
from virtbench.spec import (
    Dir,
    SpecError,
    WorkloadSpec,
    from_flags,
    from_toml,
    parse_dir,
    rewrite_paths,
    stage_dirs,
)
from virtbench.workloads.build import compile_c, toolchain_status

DATA = Path(__file__).parent / "data" / "spec"
LIB = Path(__file__).resolve().parents[1] / "lib"


# ---- parsing and errors -------------------------------------------------------------------

@pytest.fixture
def files(tmp_path) -> Path:
    """A program, an input directory and a stdin file, as a user would have them."""
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "problem.cnf").write_text("p cnf 2 2\n1 -2 0\n-1 2 0\n")
    (tmp_path / "scratch").mkdir()
    (tmp_path / "stdin.txt").write_text("hint\n")
    return tmp_path


def write_spec(where: Path, body: str) -> Path:
    path = where / "solver.toml"
    path.write_text(body)
    return path


def test_toml_and_flags_give_the_same_spec(files):
    path = write_spec(files, 'name = "solver"\ncommand = ["/bin/true"]\n'
                             'args = ["/in/problem.cnf", "/out"]\nstdin = "stdin.txt"\n'
                             'env = { SATLIKE_MODE = "x" }\ndirs = ["inputs:/in", "scratch:/out"]\n'
                             'ok_exit = [10, 20]\nsuccess = "^s SAT"\ntime_limit_s = 60\n')
    from_file = from_toml(path)
    flags = from_flags(name="solver", command="/bin/true", args=["/in/problem.cnf", "/out"],
                       stdin=str(files / "stdin.txt"), env=["SATLIKE_MODE=x"],
                       dirs=[f"{files}/inputs:/in", f"{files}/scratch:/out"], ok_exit=[10, 20],
                       success="^s SAT", time_limit_s=60)
    assert from_file == flags
    assert from_file.dirs == (Dir(files / "inputs", "/in"), Dir(files / "scratch", "/out"))
    assert from_file.env == (("SATLIKE_MODE", "x"),)


def test_flags_add_to_a_spec_file(files):
    base = from_toml(write_spec(files, 'command = ["/bin/true"]\nargs = ["a"]\n'))
    spec = from_flags(args=["b"], ok_exit=[3], base=base)
    assert spec.args == ("a", "b") and spec.ok_exit == (3,) and spec.name == "true"


def test_a_directory_without_guest_path_keeps_its_host_path(files):
    assert parse_dir(str(files / "inputs")) == Dir(files / "inputs", str(files / "inputs"))


@pytest.mark.parametrize("body, line, key, why", [
    ('command = ["/bin/true"]\nok_exit = "10"\n', 2, "ok_exit", "list of integers"),
    ('command = ["/bin/true"]\n\nthreads = 4\n', 3, "threads", "unknown key; valid: name"),
    ('command = ["/bin/true"]\nenv = { A = 1 }\n', 2, "env", "table of strings"),
    ('command = ["/bin/true"]\ndirs = ["nowhere:/in"]\n', 2, "dirs", "no such directory"),
    ('command = ["/bin/true"]\nstdin = "missing.txt"\n', 2, "stdin", "no such file"),
    ('command = ["./missing"]\n', 1, "command", "no such file"),
    ('command = ["/bin/true"]\ndirs = ["inputs:in"]\n', 2, "dirs", "must be absolute"),
    ('command = ["/bin/true"]\nsuccess = "(("\n', 2, "success", "regular expression"),
])
def test_a_malformed_spec_names_file_line_and_key(files, body, line, key, why):
    path = write_spec(files, body)
    with pytest.raises(SpecError) as err:
        from_toml(path)
    assert f"{path}:{line}" in str(err.value) and key in str(err.value)
    assert why in str(err.value)


def test_invalid_toml_names_the_line(files):
    path = write_spec(files, 'command = ["/bin/true"]\nargs = [1,,]\nname = "x"\n')
    with pytest.raises(SpecError, match=rf"{path}:2: not valid TOML"):
        from_toml(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        from_toml(tmp_path / "nope.toml")


def test_a_module_without_start_is_refused(files):
    empty = files / "lib.wasm"
    empty.write_bytes(b"\0asm\x01\x00\x00\x00")
    with pytest.raises(SpecError, match="exports no _start"):
        from_flags(wasm=str(empty))


def test_the_cli_refuses_bad_workload_flags(files, capsys):
    assert main(["run", "startup", "--variant", "native/static", "--arg", "x"]) == 2
    assert "--command, --wasm or --spec" in capsys.readouterr().err
    assert main(["run", "startup", "--variant", "native/static", "--command", "/bin/true",
                 "--dir", str(files / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["run", "startup", "--variant", "native/static", "--command", "/bin/true",
                 "--env", "1A=b"]) == 2
    assert "K=V" in capsys.readouterr().err


# ---- a user's own image archive -----------------------------------------------------------

CONFIG = "ab" * 32


def saved_archive(path: Path, manifest: object = None) -> Path:
    """A file shaped like ``docker save`` output (manifest.json; no layers needed here)."""
    import io
    import tarfile

    if manifest is None:
        manifest = [{"Config": f"{CONFIG}.json", "RepoTags": ["solver:1"], "Layers": []}]
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", json.dumps(manifest).encode()),
                           (f"{CONFIG}.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_an_image_spec_keeps_the_command_inside_the_image(files):
    saved_archive(files / "app.tar")
    spec = from_toml(write_spec(files, 'image = "app.tar"\ncommand = ["./solver", "-q"]\n'
                                       'ok_exit = [10]\n'))
    assert spec.image == files / "app.tar" and spec.command == ("./solver", "-q")
    assert spec.program is None and "lives inside the image app.tar" in spec.not_on_host()
    assert spec == from_flags(command="./solver -q", image=str(files / "app.tar"),
                              ok_exit=[10], name="solver")
    from virtbench.platforms.docker.images import read_saved_image

    image = read_saved_image(spec.image)
    assert (image.image_id, image.repo_tags) == (f"sha256:{CONFIG}", ("solver:1",))
    on_host = from_flags(command="/bin/true", image=str(files / "app.tar"))
    assert on_host.not_on_host() == "" and on_host.program == Path("/bin/true").resolve()


def test_a_native_variant_says_the_program_lives_in_the_image(files):
    from virtbench.platforms.base import NotSupported
    from virtbench.platforms.native.variants import NativeStatic

    saved_archive(files / "app.tar")
    wl = Workload.of(from_flags(command="/app/solver", image=str(files / "app.tar")))
    with pytest.raises(NotSupported, match="lives inside the image app.tar"):
        NativeStatic().run(wl)


@pytest.mark.parametrize("make, why", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"not a tar at all" * 64), "not a tar archive"),
    (lambda p: saved_archive(p, manifest=[]), "holds 0 images"),
    (lambda p: saved_archive(p, manifest=[{"Config": "x.json"}]), "names no image config"),
])
def test_a_bad_image_archive_is_refused(files, make, why):
    make(files / "app.tar")
    with pytest.raises(SpecError, match=why) as err:
        from_toml(write_spec(files, 'image = "app.tar"\ncommand = ["/app/x"]\n'))
    assert f"{files / 'solver.toml'}:1" in str(err.value)


def test_a_root_file_system_tarball_needs_docker_import_first(files):
    import tarfile

    with tarfile.open(files / "rootfs.tar", "w") as tar:
        tar.add("/bin/true", arcname="bin/true")
    with pytest.raises(SpecError, match=r"no manifest.json.*docker import FILE NAME"):
        from_flags(command="/bin/true", image=str(files / "rootfs.tar"))
    saved_archive(files / "app.tar")
    with pytest.raises(SpecError, match="give the command to run inside it"):
        from_toml(write_spec(files, 'image = "app.tar"\n'))


def test_the_cli_takes_an_image_flag(files, capsys):
    assert main(["run", "startup", "--variant", "docker/runc", "--command", "/app/x",
                 "--image", str(files / "missing.tar")]) == 2
    assert "missing.tar: no such file" in capsys.readouterr().err


def test_outcome_accepts_listed_exits_and_the_pattern():
    spec = WorkloadSpec("s", ("/bin/true",), ok_exit=(10, 20), success="^s SAT")
    spec.check_outcome(10, "c hi\ns SATISFIABLE\n", "s")
    with pytest.raises(RuntimeError, match=r"exited 0 \(accepted: 10, 20\)"):
        spec.check_outcome(0, "s SATISFIABLE\n", "s")
    with pytest.raises(RuntimeError, match="does not match the success pattern"):
        spec.check_outcome(20, "s UNKNOWN\n", "s")


def test_guest_paths_are_rewritten_for_a_native_process():
    rewrite = {"/in": "/tmp/x/dir0", "/in/deep": "/tmp/x/dir1"}
    assert rewrite_paths(["/in/a.cnf", "/in/deep/b", "/inside", "-v", "/in"], rewrite) == \
        ["/tmp/x/dir0/a.cnf", "/tmp/x/dir1/b", "/inside", "-v", "/tmp/x/dir0"]


def test_guest_script_binds_dirs_sets_env_and_stdin(files):
    spec = WorkloadSpec("solver", ("/bin/true", "-q"), args=("/in/it's.cnf",),
                        env=(("MODE", "a b"),), dirs=(Dir(files, "/in"),),
                        stdin=files / "stdin.txt")
    script = user_script(spec)
    assert "mount -o bind /work/dir0 /in" in script
    assert "export MODE='a b'" in script
    assert script.splitlines()[-4] == ("time -o /etc/vb-peak -f %M /wl/solver -q "
                                       "'/in/it'\"'\"'s.cnf' < /etc/vb-stdin")
    assert script.splitlines()[-3:] == ["rc=$?", 'echo "VB-PEAK maxrss_kib=$(tail -n 1 '
                                        '/etc/vb-peak)"', "exit $rc"]


def test_guest_output_is_what_came_between_start_and_exit():
    console = ("boot\r\nVB-START workload=x\r\nc one\r\ns SATISFIABLE\r\n"
               "VB-PEAK maxrss_kib=2048\r\nVB-EXIT workload=x rc=10\r\n")
    assert guest_output(console) == "c one\ns SATISFIABLE\n"
    assert guest_peak_kib(console.replace("\r\n", "\n")) == 2048
    assert guest_peak_kib("VB-PEAK maxrss_kib=\n") is None


def test_the_guest_peak_is_corrected_by_busybox_times_measured_unit():
    from virtbench.platforms.vm.guestpeak import busybox_maxrss_scale

    if not Path("/bin/busybox").exists() or not toolchain_status()["static"][0]:
        pytest.skip("needs busybox-static and the static toolchain")
    scale = busybox_maxrss_scale()
    assert scale in (1, os.sysconf("SC_PAGE_SIZE") // 1024)
    peak = guest_peak("VB-START\r\nVB-PEAK maxrss_kib=65536\r\nVB-EXIT rc=0\r\n")
    assert peak.kind == "guest_rss" and peak.value == 65536 // scale * 1024
    assert guest_peak("VB-START\r\nVB-EXIT rc=0\r\n").value is None


# ---- a third-party-like program on every family --------------------------------------------

def built(target: str) -> Path:
    ok, why = toolchain_status()[target]
    if not ok:
        pytest.skip(why)
    return compile_c("satlike", [DATA / "satlike.c"], target)


def harness(*args: str, datasets: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIRTBENCH_DATASETS": str(datasets),
           "PYTHONPATH": os.pathsep.join(p for p in (str(LIB), os.environ.get("PYTHONPATH"))
                                         if p)}
    return subprocess.run([sys.executable, "-m", "virtbench", "run", *args, "--quick",
                           "--reps", "1", "--no-progress", "--json"], capture_output=True,
                          text=True, env=env, timeout=900)


def available(family: str) -> list[str]:
    names = []
    for name in platforms.select([family]):
        with platforms.create(name) as plat:
            if plat.availability.available:
                names.append(name)
    return names


def check_run(proc: subprocess.CompletedProcess, datasets: Path, run_id: str,
              variants: list[str]) -> pd.DataFrame:
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pd.read_csv(datasets / run_id / "results.csv")
    for variant in variants:
        mine = rows[rows["variant"] == variant]
        measured = mine[mine["value"].notna()]
        assert not measured.empty, f"{variant}: {mine['reason'].dropna().unique()}"
        assert (mine["workload"] == "satlike").all()
    assert json.loads(proc.stdout)
    return rows


@pytest.mark.integration
def test_a_module_that_exits_10_runs_on_every_wasm_variant(files, tmp_path):
    wasm = built("wasm")
    variants = available("wasm")
    args = ["--variant", "wasm", "--wasm", str(wasm), "--arg", "/in/problem.cnf",
            "--arg", "/out", "--dir", f"{files}/inputs:/in", "--dir", f"{files}/scratch:/out",
            "--ok-exit", "10", "--workload-name", "satlike"]
    proc = harness("startup", *args, "--run-id", "flags", datasets=tmp_path / "ds")
    check_run(proc, tmp_path / "ds", "flags", variants)
    assert not any((files / "scratch").iterdir()), "the program wrote into the original"
    spec = write_spec(files, f'name = "satlike"\nwasm = "{wasm}"\n'
                             'args = ["/in/problem.cnf", "/out"]\nstdin = "stdin.txt"\n'
                             'env = { SATLIKE_MODE = "spec" }\n'
                             'dirs = ["inputs:/in", "scratch:/out"]\nok_exit = [10]\n'
                             'success = "stdin hint"\n')
    proc = harness("cpu", "--variant", "wasm", "--spec", str(spec), "--run-id", "spec",
                   datasets=tmp_path / "ds")
    rows = check_run(proc, tmp_path / "ds", "spec", variants)
    assert set(rows["metric"]) == {"wall_time"}


@pytest.mark.integration
def test_the_same_spec_runs_the_native_build_on_native_docker_and_the_vm(files, tmp_path):
    static = built("static")
    exe = files / "satlike"
    shutil.copyfile(static, exe)
    exe.chmod(0o755)
    spec = write_spec(files, 'name = "satlike"\ncommand = ["./satlike"]\n'
                             'args = ["/in/problem.cnf", "/out"]\nstdin = "stdin.txt"\n'
                             'env = { SATLIKE_MODE = "spec" }\n'
                             'dirs = ["inputs:/in", "scratch:/out"]\nok_exit = [10]\n'
                             'success = "mode spec, stdin hint"\n')
    variants = [v for v in available("native") + available("docker")
                if v != "docker+wasm/wasmtime-cli"]
    variants += [v for v in available("vm") if v == "qemu-tcg/microvm"]
    flags = [f for v in variants for f in ("--variant", v)]
    proc = harness("cpu", *flags, "--spec", str(spec), "--run-id", "native",
                   datasets=tmp_path / "ds")
    check_run(proc, tmp_path / "ds", "native", variants)
    wrong = write_spec(files, spec.read_text().replace("ok_exit = [10]", "ok_exit = [0]"))
    proc = harness("cpu", "--variant", "native/static", "--spec", str(wrong), "--run-id",
                   "wrong", datasets=tmp_path / "ds")
    assert proc.returncode == 1
    rows = pd.read_csv(tmp_path / "ds" / "wrong" / "results.csv")
    assert rows["reason"].str.contains(r"exited 10 \(accepted: 0\)").all()


def test_workload_of_a_spec_is_a_users():
    spec = WorkloadSpec("s", ("/bin/true",))
    wl = Workload.of(spec)
    assert not wl.builtin and not wl.prints_result and wl.user is spec
    assert Workload("cpu").prints_result and Workload("speedtest1").builtin
    assert not Workload("speedtest1").prints_result


@pytest.mark.integration
def test_the_peak_memory_of_a_users_program_grows_with_what_it_allocates(tmp_path):
    """``mem MIB 0`` (allocate, touch, exit) as a user's program, native build and .wasm, on
    one variant of every family: each peak it reports is larger for 64 MiB than for 8."""
    from virtbench.workloads import build

    for target in ("static", "wasm"):
        ok, why = toolchain_status()[target]
        if not ok:
            pytest.skip(why)
    static, wasm = build("mem", "static"), build("mem", "wasm")
    wanted = ["native/static", "docker/runc", "wasmtime-cli/jit",
              "wasmtime-embedded/cranelift", "qemu-tcg/microvm"]
    variants = [v for family in ("native", "docker", "wasm", "vm") for v in available(family)
                if v in wanted]
    flags = [f for v in variants for f in ("--variant", v)]
    peaks = {}
    for mib in (8, 64):
        run_id = f"mem{mib}"
        proc = harness("memory", *flags, "--command", str(static), "--wasm", str(wasm),
                       "--arg", str(mib), "--arg", "0", "--workload-name", "alloc",
                       "--run-id", run_id, datasets=tmp_path / "ds")
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = pd.read_csv(tmp_path / "ds" / run_id / "results.csv")
        assert set(rows["workload"]) == {"alloc"}
        peaks[mib] = rows[rows["value"].notna()].set_index(["variant", "metric"])["value"]
    growing = {"peak_rss", "cgroup_peak", "wasm_memory", "guest_peak_rss"}
    for variant in variants:
        measured = {m for v, m in peaks[64].index if v == variant} & growing
        assert measured, f"{variant}: no peak measured"
        for metric in measured:
            small, large = peaks[8][variant, metric], peaks[64][variant, metric]
            assert large > small, f"{variant} {metric}: {large} MiB (64) vs {small} MiB (8)"
    expected = {"native/static": {"peak_rss"}, "docker/runc": {"cgroup_peak"},
                "wasmtime-cli/jit": {"peak_rss"},
                "wasmtime-embedded/cranelift": {"peak_rss", "wasm_memory"},
                "qemu-tcg/microvm": {"peak_rss", "guest_peak_rss"}}
    for variant in variants:
        assert expected[variant] <= {m for v, m in peaks[64].index if v == variant}
    own = {("native/static", "peak_rss"), ("docker/runc", "cgroup_peak"),
           ("wasmtime-embedded/cranelift", "wasm_memory"),
           ("qemu-tcg/microvm", "guest_peak_rss")}  # the program's own pages: what it touched
    for mib in (8, 64):
        for key in own & set(peaks[mib].index):
            assert mib <= peaks[mib][key] < mib + 32, f"{key}: {peaks[mib][key]} MiB for {mib}"


# ---- no escape through --dir (issue 26) -------------------------------------------------

@pytest.fixture
def linked(tmp_path) -> Path:
    """A directory with links inside it (absolute and relative) and, beside it, a secret."""
    (tmp_path / "secret.txt").write_text("host secret\n")
    (tmp_path / "secret_dir").mkdir()
    inputs = tmp_path / "inputs"
    (inputs / "real").mkdir(parents=True)
    (inputs / "real" / "problem.cnf").write_text("p cnf 2 2\n1 -2 0\n-1 2 0\n")
    (inputs / "problem.cnf").symlink_to(inputs / "real" / "problem.cnf")  # absolute, inside
    (inputs / "again.cnf").symlink_to("real/problem.cnf")  # relative, inside
    return tmp_path


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_link_out_of_a_dir_is_refused_before_anything_starts(linked, kind):
    (linked / "inputs" / "out").symlink_to(linked / ("secret.txt" if kind == "file"
                                                     else "secret_dir"))
    with pytest.raises(SpecError, match=r"inputs/out is a symbolic link to .*secret"):
        from_flags(command="/bin/true", dirs=[f"{linked}/inputs:/in"])
    spec = WorkloadSpec("x", command=("/bin/true",), dirs=(Dir(linked / "inputs", "/in"),))
    with pytest.raises(SpecError, match="outside"):
        stage_dirs(spec, linked / "stage")
    assert not (linked / "stage").exists()


def test_links_inside_a_dir_resolve_inside_the_staged_copy(linked):
    spec = WorkloadSpec("x", command=("/bin/true",), dirs=(Dir(linked / "inputs", "/in"),))
    copy = stage_dirs(spec, linked / "stage")["/in"]
    for name in ("problem.cnf", "again.cnf"):
        link = copy / name
        assert link.is_symlink() and not os.readlink(link).startswith("/")
        assert link.resolve().is_relative_to(copy.resolve())
        assert link.read_text().startswith("p cnf")


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["native/static", "docker/runc", "wasmtime-cli/jit",
                                     "node-wasi/v8", "wasmer/cranelift", "qemu-tcg/microvm"])
def test_no_family_takes_a_dir_with_a_link_out(linked, tmp_path, variant):
    wasm = built("wasm")
    (linked / "inputs" / "leak").symlink_to(linked / "secret_dir")
    (linked / "inputs" / "leak.txt").symlink_to(linked / "secret.txt")
    proc = harness("startup", "--variant", variant, "--wasm", str(wasm), "--arg",
                   "/in/leak.txt", "--arg", "/in", "--dir", f"{linked}/inputs:/in",
                   "--run-id", "escape", datasets=tmp_path / "ds")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "is a symbolic link to" in proc.stderr and "outside" in proc.stderr
    assert not (tmp_path / "ds" / "escape" / "results.csv").exists()


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["node-wasi/v8", "wasmer/cranelift"])
def test_engines_that_follow_links_read_inside_links_within_the_copy(linked, tmp_path,
                                                                     variant):
    wasm = built("wasm")
    with platforms.create(variant) as plat:
        if not plat.availability.available:
            pytest.skip(plat.availability.reason)
    (linked / "scratch").mkdir()
    proc = harness("startup", "--variant", variant, "--wasm", str(wasm), "--arg",
                   "/in/problem.cnf", "--arg", "/out", "--dir", f"{linked}/inputs:/in",
                   "--dir", f"{linked}/scratch:/out", "--ok-exit", "10",
                   "--workload-name", "satlike", "--run-id", "inside",
                   datasets=tmp_path / "ds")
    check_run(proc, tmp_path / "ds", "inside", [variant])
