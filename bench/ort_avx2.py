"""A copy of the installed ONNX Runtime whose CPU kernels keep to AVX2 on an AVX-512 machine.

ONNX Runtime's CPU kernels (MLAS) are chosen once, from cpuid, with no switch to lower them:
on an AVX-512 CPU it always runs its AVX-512 kernels. To compare against it as on an AVX2
machine, this copies the installed `onnxruntime` package into DEST and changes one byte of the
copy: in MLAS's platform setup, the conditional jump taken when cpuid lacks AVX512F becomes an
unconditional one, so the setup goes on as on a CPU without AVX-512 (AVX2+FMA kernels; every
later AVX-512 choice hangs off that check). The installed package is not touched.

The instruction sequence is that of onnxruntime 1.32's x86-64 Linux wheel:

    test $0x10000, %r10d     ; cpuid(7).ebx & AVX512F
    je   +0x0e               ; <- patched to jmp: skip the AVX-512 kernels
    mov  %r8, %rax
    not  %rax
    test $0xe0, %al          ; XCR0: opmask and ZMM state enabled by the OS
    je   <avx-512 setup>

Another build is refused (the sequence must occur exactly once), and nothing is patched.
Checked by speed: Inception v3 at batch 1 ran 31.8 img/s with the installed package and
17.4 with the copy on a 2-core AVX-512 EPYC (2026-12-03).

usage: python bench/ort_avx2.py DEST   (prints the directory to put on PYTHONPATH)
"""
import importlib.util
import os
import shutil
import sys

PATTERN = bytes.fromhex("41 f7 c2 00 00 01 00 74 0e 4c 89 c0 48 f7 d0 a8 e0 0f 84")
JUMP = 7  # offset of the `je` opcode (0x74) in PATTERN


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ort_avx2.py DEST")
    dest = os.path.abspath(sys.argv[1])
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("ort_avx2: onnxruntime is not installed in this Python")
    src = spec.submodule_search_locations[0]
    pkg = os.path.join(dest, "onnxruntime")
    if os.path.exists(pkg):
        shutil.rmtree(pkg)
    shutil.copytree(src, pkg)
    capi = os.path.join(pkg, "capi")
    patched = []
    for name in os.listdir(capi):
        if not name.endswith(".so") and ".so." not in name:
            continue
        path = os.path.join(capi, name)
        data = bytearray(open(path, "rb").read())
        count = data.count(PATTERN)
        if count == 0:
            continue
        if count > 1:
            shutil.rmtree(pkg)
            sys.exit(f"ort_avx2: {name}: the AVX-512 check occurs {count} times; not patched")
        data[data.find(PATTERN) + JUMP] = 0xEB
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, os.stat(path).st_mode)
        os.replace(tmp, path)
        patched.append(name)
    if not patched:
        shutil.rmtree(pkg)
        sys.exit("ort_avx2: MLAS's AVX-512 check was not found (another onnxruntime build?); "
                 "not patched")
    print(dest)


if __name__ == "__main__":
    main()
