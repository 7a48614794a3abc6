"""Run inside ``unshare -m`` with a small tmpfs at argv[1]: fill it, remount it read-only, and
report (one JSON object on stdout) what the registry said and what it left behind."""

import json
import os
import subprocess
import sys
from pathlib import Path

from llmops_magics.errors import RegistryError
from llmops_magics.store import Registry

mount = Path(sys.argv[1])
home = mount / "reg"
out: dict = {}


def attempt(label, fn):
    try:
        fn()
        out[label] = "ok"
    except RegistryError as exc:
        out[label] = f"RegistryError: {exc}"


def fill() -> Path:
    filler = mount / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (65536, 4096, 512, 1):  # down to the last byte
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                pass
    return filler


reg = Registry(home)
reg.save("prompt", "kept", data=b"kept {{ x }}")
model = mount / "model"
model.mkdir()
(model / "weights.bin").write_bytes(os.urandom(40_000))
filler = fill()
# Same bytes as an existing blob: only the database needs room (SQLite's own disk-full path).
attempt("db_full", lambda: reg.save("prompt", "same-bytes", data=b"kept {{ x }}"))
# New bytes: the blob write hits the full disk first.
attempt("blob_full", lambda: reg.save("prompt", "new-bytes", data=os.urandom(50_000)))
attempt("tree_full", lambda: reg.save("model", "weights", path=model))
out["tmp_left"] = sorted(os.listdir(home / "tmp"))
out["names_after_full"] = sorted(n.name for n in reg.names())
out["kept_reads"] = reg.read_bytes("prompt://kept").decode()
filler.unlink()
attempt("after_free", lambda: reg.save("prompt", "new-bytes", data=b"room again"))
out["verify_after_full"] = list(reg.verify().problems)
reg.close()

subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
ro = Registry(home)
out["ro_read"] = ro.read_bytes("prompt://new-bytes").decode()
out["ro_names"] = sorted(n.name for n in ro.names())
attempt("ro_save_same_bytes", lambda: ro.save("prompt", "again", data=b"room again"))
attempt("ro_save_new_bytes", lambda: ro.save("prompt", "again", data=b"new"))
attempt("ro_tag", lambda: ro.set_alias("prompt://kept", "production"))
print(json.dumps(out))
