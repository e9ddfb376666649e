"""Every malformed input gets a StoreError with a specific message, from open_run and from
`python -m engine validate` (exit 1, message on stderr, no traceback)."""

from __future__ import annotations

import io
import shutil
import re
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr

import storekit
from engine.cli import main as cli_main
from engine.record import Limits, StoreError, open_run, pack
from storekit import edit_json

Build = Callable[[Path, Path, Path], Path]
CASES: dict[str, tuple[Build, str, Limits | None]] = {}


def case(name: str, message: str, limits: Limits | None = None) -> Callable[[Build], Build]:
    """Register a malformed input: build(tmp, good gradient store, good training store)."""

    def register(build: Build) -> Build:
        CASES[name] = (build, message, limits)
        return build

    return register


def grad_copy(tmp: Path, grad: Path) -> Path:
    return storekit.copy_store(grad, tmp / "bad.zarr")


def root_attrs(fn: Callable[[dict], None]) -> Build:
    def build(tmp: Path, grad: Path, train: Path) -> Path:
        store = grad_copy(tmp, grad)
        edit_json(store / "zarr.json", lambda meta: fn(meta["attributes"]))
        return store

    return build


def array_meta(array: str, fn: Callable[[dict], None]) -> Build:
    def build(tmp: Path, grad: Path, train: Path) -> Path:
        store = grad_copy(tmp, grad)
        edit_json(store / "gradient_error" / array / "zarr.json", fn)
        return store

    return build


def zipped(extra: dict[str, bytes] | None = None, infos: list[tuple[zipfile.ZipInfo, bytes]] | None = None) -> Build:
    """The good gradient store, packed, plus extra members."""

    def build(tmp: Path, grad: Path, train: Path) -> Path:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate we make on purpose
            out = storekit.zip_contents(grad, tmp / "bad.zarr.zip", extra)
        with zipfile.ZipFile(out, "a") as zf:
            for info, data in infos or []:
                zf.writestr(info, data)
        return out

    return build


# -- not a store --------------------------------------------------------------------------------

case("empty dir", r"is not a Zarr store: it has no zarr\.json")(
    lambda tmp, g, t: (tmp / "empty.zarr").mkdir() or tmp / "empty.zarr")
case("random file", r"neither a store directory .* nor a zip file|The file is not a zip file; a run store is")(
    lambda tmp, g, t: (tmp / "junk.bin").write_bytes(np.random.default_rng(0).bytes(5000)) and tmp / "junk.bin")
case("random bytes named .zip", r"The file is not a zip file; a run store is")(
    lambda tmp, g, t: (tmp / "junk.zarr.zip").write_bytes(b"\x00" * 3000) and tmp / "junk.zarr.zip")
case("zip without zarr.json", r"not a Zarr store: it has no zarr\.json at its root")(
    lambda tmp, g, t: _zip(tmp / "x.zip", {"readme.txt": b"hello", "data/0": b"1"}))
case("zip with a top-level folder", r"top-level folder 'grad\.zarr' .* zip the contents, not the folder")(
    lambda tmp, g, t: Path(shutil.make_archive(str(tmp / "folder"), "zip", root_dir=g.parent, base_dir=g.name)))
case("truncated zip", r"truncated")(
    lambda tmp, g, t: _write(tmp / "t.zarr.zip", pack(g, tmp / "full.zip").read_bytes()[:-700]))


def _zip(out: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@case("zarr v2 directory", r"is a Zarr v2 store; run stores are Zarr v3")
def _v2(tmp: Path, grad: Path, train: Path) -> Path:
    g = zarr.open_group(tmp / "v2.zarr", mode="w", zarr_format=2)
    g.create_array("x", shape=(3,), dtype="f8")[:] = 1.0
    return tmp / "v2.zarr"


@case("zarr v2 zip", r"This is a Zarr v2 store")
def _v2zip(tmp: Path, grad: Path, train: Path) -> Path:
    return storekit.zip_contents(_v2(tmp, grad, train), tmp / "v2.zarr.zip")


@case("unparsable root zarr.json", r"root Zarr metadata \(zarr\.json\) could not be read")
def _badjson(tmp: Path, grad: Path, train: Path) -> Path:
    store = grad_copy(tmp, grad)
    (store / "zarr.json").write_text("{not json")
    return store


# -- schema and commit record ------------------------------------------------------------------

case("wrong schema", r"not an mbrl-workbench run store \(its 'schema' attribute is 'acme/run'")(
    root_attrs(lambda a: a.update(schema="acme/run")))
case("missing schema", r"its root has no 'schema' attribute")(root_attrs(lambda a: a.pop("schema")))
case("unknown schema_version", r"declares schema version 2; this engine reads version 1")(
    root_attrs(lambda a: a.update(schema_version=2)))
case("missing schema_version", r"declares no schema version")(root_attrs(lambda a: a.pop("schema_version")))
case("string schema_version", r"declares schema version '1'")(root_attrs(lambda a: a.update(schema_version="1")))
case("unknown kind", r"Unknown store kind 'rl'")(root_attrs(lambda a: a.update(kind="rl")))
case("malformed commit record", r"commit record \('committed'\) is malformed")(
    root_attrs(lambda a: a.update(committed={"gradient_error": -1})))
case("missing group named in committed", r"names group\(s\) \['critic'\] that are not in it")(
    root_attrs(lambda a: a["committed"].update(critic=2)))
case("complete store without a required group", r"complete training store lacks required group\(s\) \['eval'\]")(
    lambda tmp, g, t: _drop_eval(tmp, t))


def _drop_eval(tmp: Path, train: Path) -> Path:
    store = storekit.copy_store(train, tmp / "bad.zarr")
    edit_json(store / "zarr.json", lambda m: m["attributes"]["committed"].pop("eval"))
    return store


# -- arrays ------------------------------------------------------------------------------------


@case("missing variable", r"Group 'gradient_error' is missing variable\(s\) \['eps_q'\]")
def _missing_var(tmp: Path, grad: Path, train: Path) -> Path:
    store = grad_copy(tmp, grad)
    shutil.rmtree(store / "gradient_error" / "eps_q")
    return store


case("wrong dims", r"gradient_error/est_grad has dims \('seed', 'horizon', 'dynamics', 'param'\); the schema says")(
    array_meta("est_grad", lambda m: m.update(dimension_names=["seed", "horizon", "dynamics", "param"])))
case("no dim names", r"gradient_error/eps_f has no dimension names")(
    array_meta("eps_f", lambda m: m.pop("dimension_names")))
case("wrong dtype", r"gradient_error/eps_f has dtype int64; the schema says float64")(
    array_meta("eps_f", lambda m: m.update(data_type="int64", fill_value=0)))
case("missing units", r"gradient_error/eps_q lacks the 'units' attribute")(
    array_meta("eps_q", lambda m: m["attributes"].pop("units")))
case("ragged fixed dim", r"Ragged lengths in group 'gradient_error': dim 'param' is (3|2) long")(
    array_meta("est_grad", lambda m: m.update(shape=[3, 2, 4, 3])))
case("append-dim array shorter than committed",
     r"gradient_error/eps_f holds 2 record\(s\) along 'seed' but 3 were committed")(
    array_meta("eps_f", lambda m: m.update(shape=[2])))
case("committed beyond the data", r"holds 3 record\(s\) along 'seed' but 4 were committed")(
    root_attrs(lambda a: a["committed"].update(gradient_error=4)))
case("declared shape of 2**40 elements", r"eps_f declares shape \(1099511627776,\) \(8\.19e\+03 GiB\)")(
    array_meta("eps_f", lambda m: m.update(shape=[2**40])))
case("declared chunk of 2**30 elements", r"eps_q declares chunks of shape \(1073741824,\)")(
    array_meta("eps_q", lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[2**30])))


def _poke(array: str, index: tuple, value: float) -> Build:
    def build(tmp: Path, grad: Path, train: Path) -> Path:
        store = grad_copy(tmp, grad)
        arr = zarr.open_array(store / "gradient_error" / array, mode="r+")
        arr[index] = value
        return store

    return build


case("NaN where the schema forbids it", r"gradient_error/eps_f holds 1 NaN or infinite value\(s\)")(
    _poke("eps_f", (1,), np.nan))
case("inf where the schema forbids it", r"gradient_error/est_grad holds 1 NaN or infinite value\(s\)")(
    _poke("est_grad", (2, 1, 3, 0), -np.inf))
case("corrupt chunk", r"gradient_error/eps_f: its data could not be read")(
    lambda tmp, g, t: _corrupt_chunk(grad_copy(tmp, g)))


def _corrupt_chunk(store: Path) -> Path:
    (store / "gradient_error" / "eps_f" / "c" / "0").write_bytes(b"not zstd at all")
    return store


# -- unsafe zips -------------------------------------------------------------------------------

_link = zipfile.ZipInfo("gradient_error/link")
_link.external_attr = (stat.S_IFLNK | 0o777) << 16
case("zip member with ..", r"unsafe member name '\.\./escape'")(zipped({"../escape": b"x"}))
case("zip member with absolute path", r"unsafe member name '/etc/zarr\.json'")(zipped({"/etc/zarr.json": b"{}"}))
case("zip member that is a symlink", r"'gradient_error/link' is a symbolic link")(zipped(infos=[(_link, b"/etc/passwd")]))
case("zip with a duplicate member", r"has the member 'zarr\.json' twice")(zipped({"zarr.json": b"{}"}))
_bomb = zipfile.ZipInfo("bomb")
_bomb.compress_type = zipfile.ZIP_DEFLATED
case("zip bomb", r"'bomb' expands \d+ times \(limit 200\): refusing a possible zip bomb")(
    zipped(infos=[(_bomb, b"\0" * (4 << 20))]))
case("zip with too many members", r"holds 20\d\d\d members; the limit is 20000")(
    zipped({f"junk/{i}": b"" for i in range(20_001)}))
case("zip too large for custom limits", r"The zip is .* MiB; the limit is", Limits(max_zip_bytes=4096))(zipped())
case("zip over a custom member limit", r"members; the limit is 5", Limits(max_members=5))(zipped())
case("zip over a custom expansion limit", r"expands to .* the limit is", Limits(max_uncompressed_bytes=1000))(zipped())


@case("encrypted zip member", r"'gradient_error/eps_f/zarr\.json' is encrypted")
def _encrypted(tmp: Path, grad: Path, train: Path) -> Path:
    out = zipped()(tmp, grad, train)
    data = bytearray(out.read_bytes())
    name = b"gradient_error/eps_f/zarr.json"
    local = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(name.decode()).header_offset
    data[local + 6] |= 1  # local header flags
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:  # central directory entry of the same member
        n = int.from_bytes(data[pos + 28 : pos + 30], "little")
        if data[pos + 46 : pos + 46 + n] == name:
            data[pos + 8] |= 1
            break
        pos = data.find(b"PK\x01\x02", pos + 46)
    out.write_bytes(bytes(data))
    return out


def _build(name: str, tmp: Path, grad: Path, train: Path) -> tuple[Path, str, Limits | None]:
    build, message, limits = CASES[name]
    return build(tmp, grad, train), message, limits


@pytest.mark.parametrize("name", sorted(CASES))
def test_open_run_refuses_with_a_specific_message(name: str, tmp_path: Path, gradient_store: Path,
                                                  training_store: Path) -> None:
    path, message, limits = _build(name, tmp_path, gradient_store, training_store)
    kw = {"limits": limits} if limits else {}
    with pytest.raises(StoreError, match=message):
        open_run(path, **kw)
    if path.is_file():  # an upload: the same bytes in memory get the same message
        with pytest.raises(StoreError, match=message):
            open_run(path.read_bytes(), **kw)


@pytest.mark.parametrize("name", sorted(n for n, (_, _, limits) in CASES.items() if limits is None))
def test_validate_cli_exits_1_with_the_message(name: str, tmp_path: Path, gradient_store: Path,
                                               training_store: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path, message, _ = _build(name, tmp_path, gradient_store, training_store)
    assert cli_main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("invalid store: ") and out == ""
    assert re.search(message, err), err
    assert "Traceback" not in err


def test_validate_cli_in_a_real_process(tmp_path: Path, gradient_store: Path, training_store: Path) -> None:
    """`python -m engine validate`: summary and exit 0 on a good store, exit 1 without a
    traceback on bad ones."""
    good = storekit.run_python("-m", "engine", "validate", str(pack(training_store, tmp_path / "t.zip")))
    assert good.returncode == 0, good.stderr
    for expected in ("kind:       training", "env:        Hopper-v5", "status:     complete",
                     "replay", "step=50", "obs_dim=5", "act_dim=2", "snapshot=4, episode=3",
                     "update=4"):
        assert expected in good.stdout
    for name in ("zip bomb", "NaN where the schema forbids it"):
        build, message, _ = CASES[name]
        sub = tmp_path / name.replace(" ", "_")
        sub.mkdir()
        bad = storekit.run_python("-m", "engine", "validate", str(build(sub, gradient_store, training_store)))
        assert bad.returncode == 1, (name, bad.stdout, bad.stderr)
        assert bad.stderr.startswith("invalid store: ") and "Traceback" not in bad.stderr, bad.stderr
        assert re.search(message, bad.stderr), bad.stderr


def test_pack_cli(tmp_path: Path, gradient_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = storekit.copy_store(gradient_store, tmp_path / "g.zarr")
    assert cli_main(["pack", str(store)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert open_run(tmp_path / "g.zarr.zip")["gradient_error"].sizes["seed"] == 3
    (tmp_path / "empty").mkdir()
    assert cli_main(["pack", str(tmp_path / "empty")]) == 1
    assert "cannot pack: " in capsys.readouterr().err
